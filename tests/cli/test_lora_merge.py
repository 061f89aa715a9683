"""lora-merge: the merged folder computes exactly what base + adapter computes through peft."""

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.adapter import read_adapter, write_adapter
from voxlora.cli.lora_merge import main
from voxlora.lora_options import LoraSettings
from voxlora.models.csm import load_csm, weight_shapes
from voxlora.peft_bridge import apply_adapter, new_adapter_for

EVERYTHING = LoraSettings(
    rank=4, alpha=8, targets=("all-linear", "codebook0_head", "projection"), train_embeddings=True
)


def trained_adapter(model, settings, path, seed=1):
    """An adapter as if trained (B and the embeddings moved), written to ``path``."""
    adapter = new_adapter_for(model, settings, seed=0)
    gen = torch.Generator().manual_seed(seed)
    for _, B in adapter.lora.values():
        B.copy_(torch.randn(B.shape, generator=gen) * 0.2)
    for t in adapter.trained.values():
        t.add_(torch.randn(t.shape, generator=gen) * 0.2)
    write_adapter(adapter, path)
    return path


def csm_outputs(model, seed=0) -> torch.Tensor:
    """Every logit CSM computes: text -> backbone -> lm_head, and audio frames -> backbone -> depth decoder."""
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    text = torch.randint(0, config.text_vocab_size, (2, 6), generator=gen)
    frames = torch.randint(0, config.vocab_size, (2, 5, config.num_codebooks), generator=gen)
    with torch.no_grad():
        from_text = model(input_ids=text).logits
        from_audio = model(input_ids=frames, labels=frames)
    return torch.cat(
        [from_text.flatten(), from_audio.logits.flatten(), from_audio.depth_decoder_logits.flatten()]
    )


def merge(*args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


def assert_close(merged, applied):
    assert (merged - applied).abs().max() <= 1e-5 * applied.abs().max()


@pytest.mark.parametrize("settings", [LoraSettings(), EVERYTHING], ids=["q_v", "everything"])
def test_merged_model_equals_base_plus_adapter_through_peft(tiny_csm, tmp_path, settings):
    adapter = trained_adapter(tiny_csm, settings, tmp_path / "adapter")
    result = merge("--model", tiny_csm, "--adapter", adapter, "-o", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["model"] == str(tmp_path / "merged") and record["merged"] == len(read_adapter(adapter).lora)

    base = load_csm(tiny_csm).model
    before = csm_outputs(base)
    applied = csm_outputs(apply_adapter(base, read_adapter(adapter))[0])
    merged = csm_outputs(load_csm(tmp_path / "merged").model)
    assert not torch.allclose(applied, before, atol=1e-3)  # the adapter does change the model
    assert_close(merged, applied)


def test_merge_is_exact_and_keeps_the_base_layout(tiny_csm, tmp_path):
    adapter = trained_adapter(tiny_csm, LoraSettings(targets=("attn", "lm_head")), tmp_path / "adapter")
    assert merge("--model", tiny_csm, "--adapter", adapter, "-o", tmp_path / "merged").exit_code == 0
    out = tmp_path / "merged"
    assert weight_shapes(out) == weight_shapes(tiny_csm)  # same keys, same shapes
    base, merged = load_file(tiny_csm / "model.safetensors"), load_file(out / "model.safetensors")
    config = json.loads((adapter / "adapter_config.json").read_text())
    scaling = config["lora_alpha"] / config["r"]
    expected = dict(base)  # the plain formula W + scaling * B @ A, written here, not voxlora's merge
    for module, (A, B) in read_adapter(adapter).lora.items():
        expected[f"{module}.weight"] = base[f"{module}.weight"] + scaling * (B @ A)
    assert len(expected) == len(base) and scaling == 2.0
    assert all(torch.equal(merged[k], expected[k]) and merged[k].dtype == base[k].dtype for k in base)
    side = sorted(p.name for p in tiny_csm.iterdir() if p.suffix != ".safetensors")
    assert side == sorted(p.name for p in out.iterdir() if p.suffix != ".safetensors")
    assert (out / "tokenizer.json").read_bytes() == (tiny_csm / "tokenizer.json").read_bytes()


def test_trained_embeddings_untie_the_audio_tables(tiny_csm, tmp_path):
    adapter = trained_adapter(tiny_csm, LoraSettings(train_embeddings=True), tmp_path / "adapter")
    assert merge("--model", tiny_csm, "--adapter", adapter, "-o", tmp_path / "merged").exit_code == 0
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["tie_codebooks_embeddings"] is False
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    trained = read_adapter(adapter).trained["backbone_model.embed_tokens.embed_audio_tokens.weight"]
    assert torch.equal(merged["backbone_model.embed_tokens.embed_audio_tokens.weight"], trained)
    assert torch.equal(  # the depth decoder keeps the base table, as under peft
        merged["depth_decoder.model.embed_tokens.weight"],
        load_file(tiny_csm / "model.safetensors")["depth_decoder.model.embed_tokens.weight"],
    )


def test_dtype_casts_the_transformers_but_not_the_codec(tiny_csm, tmp_path):
    adapter = trained_adapter(tiny_csm, LoraSettings(), tmp_path / "adapter")
    result = merge("--model", tiny_csm, "--adapter", adapter, "-o", tmp_path / "bf16", "--dtype", "bf16")
    assert result.exit_code == 0, result.output
    merged = load_file(tmp_path / "bf16" / "model.safetensors")
    assert merged["backbone_model.layers.0.self_attn.q_proj.weight"].dtype == torch.bfloat16
    assert all(
        t.dtype == torch.float32
        for k, t in merged.items()
        if k.startswith("codec_model.") and t.is_floating_point()
    )
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    assert load_csm(tmp_path / "bf16", dtype="bf16").model is not None


def test_sharded_checkpoints_stay_sharded(tiny_csm, tmp_path):
    sharded = tmp_path / "sharded"
    load_csm(tiny_csm).model.save_pretrained(sharded, max_shard_size="500KB")
    for p in tiny_csm.iterdir():
        if p.suffix != ".safetensors":
            shutil.copy(p, sharded / p.name)
    assert (sharded / "model.safetensors.index.json").is_file()
    adapter = trained_adapter(tiny_csm, EVERYTHING, tmp_path / "adapter")
    assert merge("--model", sharded, "--adapter", adapter, "-o", tmp_path / "m1").exit_code == 0
    assert merge("--model", tiny_csm, "--adapter", adapter, "-o", tmp_path / "m2").exit_code == 0
    index = json.loads((tmp_path / "m1" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert "backbone_model.embed_tokens.embed_audio_tokens.weight" in index["weight_map"]
    assert torch.equal(
        csm_outputs(load_csm(tmp_path / "m1").model), csm_outputs(load_csm(tmp_path / "m2").model)
    )


def test_a_mismatched_adapter_is_refused_with_every_key(tiny_csm, tmp_path):
    adapter = new_adapter_for(tiny_csm, LoraSettings())
    adapter.lora["backbone_model.layers.0.self_attn.q_proj"] = (torch.zeros(8, 48), torch.zeros(64, 8))
    adapter.lora["model.layers.0.self_attn.q_proj"] = (torch.zeros(8, 64), torch.zeros(64, 8))
    write_adapter(adapter, tmp_path / "bad")
    result = merge("--model", tiny_csm, "--adapter", tmp_path / "bad", "-o", tmp_path / "merged")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'bad'}: 2 adapter keys do not fit the base: ")
    assert "backbone_model.layers.0.self_attn.q_proj: LoRA (64, 48) vs base (64, 64)" in result.stderr
    assert "model.layers.0.self_attn.q_proj: no such module in the base" in result.stderr
    assert result.stdout == "" and not (tmp_path / "merged").exists()


def test_refuses_to_overwrite_the_base(tiny_csm, tmp_path):
    adapter = trained_adapter(tiny_csm, LoraSettings(), tmp_path / "adapter")
    copy = shutil.copytree(tiny_csm, tmp_path / "base")
    result = merge("--model", copy, "--adapter", adapter, "-o", copy)
    assert result.exit_code == 1 and "the output folder is the base model's folder" in result.stderr


@pytest.mark.parametrize("args", [[], ["--model", "m"], ["--model", "m", "--adapter", "a"]])
def test_missing_options_are_usage_errors(args):
    assert merge(*args).exit_code == 2
