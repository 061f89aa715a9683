"""lora-init, lora-inspect and lora-merge on tiny Higgs Audio v2 and VoxCPM checkpoints."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.adapter import read_adapter, write_adapter
from voxlora.cli.lora_init import main as init_main
from voxlora.cli.lora_inspect import main as inspect_main
from voxlora.cli.lora_merge import main as merge_main
from voxlora.lora_options import LoraSettings
from voxlora.peft_bridge import new_adapter_for

from tests.fixtures.tiny_families import write_voxcpm_lora

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def invoke(main, *args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


def trained(model, settings, seed=1):
    """A fresh adapter whose B moved, as if trained."""
    adapter = new_adapter_for(model, settings)
    gen = torch.Generator().manual_seed(seed)
    for _, B in adapter.lora.values():
        B.copy_(torch.randn(B.shape, generator=gen) * 0.2)
    for t in adapter.trained.values():
        t.add_(torch.randn(t.shape, generator=gen) * 0.2)
    return adapter


def assert_merged_exactly(base, merged, adapter, renamed=lambda m: m):
    """Every LoRA module is W + scaling * B @ A (bit for bit), every other tensor as it was."""
    before, after = load_file(base / "model.safetensors"), load_file(merged / "model.safetensors")
    assert set(before) == set(after)
    modules = {f"{renamed(m)}.weight": ab for m, ab in adapter.lora.items()}
    for name, t in before.items():
        if name in modules:
            A, B = modules[name]
            assert torch.equal(after[name], t + adapter.alpha / adapter.r * (B @ A)), name
            assert not torch.equal(after[name], t)
        elif name not in adapter.trained:
            assert torch.equal(after[name], t), name


@pytest.mark.parametrize(
    "model, args, modules, layers",
    [
        ("tiny_higgs", ["--targets", "attn"], 8, {"backbone": "0-1"}),
        ("tiny_higgs", ["--targets", "audio-ffn", "--layers", "1"], 3, {"backbone": "1"}),
        ("tiny_higgs", ["--targets", "all-linear,audio_lm_head"], 21, {"backbone": "0-1"}),
        ("tiny_voxcpm", ["--targets", "attn"], 20, {"base_lm": "0-1", "residual_lm": "0", "dit": "0-1"}),
        ("tiny_voxcpm", ["--component", "dit", "--targets", "attn,proj"], 11, {"dit": "0-1"}),
    ],
)
def test_dry_run_plans(request, model, args, modules, layers):
    result = invoke(init_main, "--model", request.getfixturevalue(model), "--dry-run", *args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["modules"], plan["layers"]) == (modules, layers)
    assert plan["settings"]["family"] == plan["family"]


def test_init_writes_a_peft_adapter_peft_loads_on_higgs(tiny_higgs, tmp_path):
    from peft import PeftModel
    from transformers import HiggsAudioV2ForConditionalGeneration

    result = invoke(init_main, "--model", tiny_higgs, "--targets", "attn,audio-ffn", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["family"] == "higgs-audio-v2"
    adapter = read_adapter(tmp_path / "a")
    assert adapter.meta["created_with"]["settings"]["family"] == "higgs-audio-v2"
    keys = load_file(tmp_path / "a" / "adapter_model.safetensors")
    assert "base_model.model.model.layers.0.audio_mlp.up_proj.lora_A.weight" in keys
    base = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_higgs)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "a")
    wrapped = {n for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}
    assert {n.removeprefix("base_model.model.") for n in wrapped} == set(adapter.lora)


def test_family_override(tiny_higgs, tmp_path):
    config = json.loads((tiny_higgs / "config.json").read_text())
    folder = tmp_path / "renamed"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "my_higgs_finetune"}))
    (folder / "model.safetensors").symlink_to(tiny_higgs / "model.safetensors")
    result = invoke(init_main, "--model", folder, "--dry-run", "--targets", "audio-ffn")
    assert result.exit_code == 1 and "pass --family" in result.stderr
    result = invoke(
        init_main, "--model", folder, "--dry-run", "--targets", "audio-ffn", "--family", "higgs-audio-v2"
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["modules"] == 6


def test_wrong_component_for_the_family_is_exit_1(tiny_voxcpm, tmp_path):
    result = invoke(init_main, "--model", tiny_voxcpm, "--component", "decoder", "-o", tmp_path / "a")
    assert result.exit_code == 1
    assert result.stderr == "Error: unknown component 'decoder' (use lm, dit or all)\n"


def test_higgs_merge_is_exact_and_equals_peft(tiny_higgs, tmp_path):
    from transformers import HiggsAudioV2ForConditionalGeneration

    adapter = trained(tiny_higgs, LoraSettings(rank=4, alpha=8, targets=("all-linear", "audio_lm_head")))
    write_adapter(adapter, tmp_path / "a")
    result = invoke(merge_main, "--model", tiny_higgs, "--adapter", tmp_path / "a", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["merged"] == 21
    assert_merged_exactly(tiny_higgs, tmp_path / "m", adapter)

    from voxlora.peft_bridge import apply_adapter

    peft_model, _ = apply_adapter(HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_higgs), adapter)
    reference = peft_model.merge_and_unload().state_dict()
    merged = load_file(tmp_path / "m" / "model.safetensors")
    assert max((merged[n] - reference[n]).abs().max().item() for n in merged) < 1e-6


def test_peft_saved_higgs_adapter_is_read_inspected_and_merged(tiny_higgs, tiny_higgs_original, tmp_path):
    """An adapter saved by peft itself (suffix target_modules), also merged into the original layout."""
    from peft import LoraConfig, get_peft_model
    from transformers import HiggsAudioV2ForConditionalGeneration

    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_higgs)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "audio_mlp.down_proj"])
    peft_model = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.copy_(torch.randn(p.shape, generator=gen))
    peft_model.save_pretrained(tmp_path / "peft")

    result = invoke(inspect_main, tmp_path / "peft", "--model", tiny_higgs, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["format"], report["family"], report["modules"]) == ("peft", "higgs-audio-v2", 6)
    assert report["targets"] == ["q_proj", "v_proj", "audio_mlp.down_proj"] and report["problems"] == []

    adapter = read_adapter(tmp_path / "peft")
    assert adapter.scaling == 4.0
    result = invoke(merge_main, "--model", tiny_higgs, "--adapter", tmp_path / "peft", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert_merged_exactly(tiny_higgs, tmp_path / "m", adapter)
    reference = peft_model.merge_and_unload().state_dict()
    merged = load_file(tmp_path / "m" / "model.safetensors")
    assert max((merged[n] - reference[n]).abs().max().item() for n in merged) < 1e-6

    # the same adapter on a checkpoint in boson_multimodal's layout (layers.N..., no model. prefix)
    result = invoke(
        merge_main, "--model", tiny_higgs_original, "--adapter", tmp_path / "peft", "-o", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    assert_merged_exactly(
        tiny_higgs_original, tmp_path / "o", adapter, renamed=lambda m: m.removeprefix("model.")
    )


def test_voxcpm_own_lora_checkpoint(tiny_voxcpm, tmp_path):
    """lora_weights.safetensors + lora_config.json as VoxCPM's trainer saves them: read, checked, merged."""
    adapter = trained(tiny_voxcpm, LoraSettings(rank=4, alpha=16, targets=("attn", "proj")))
    write_voxcpm_lora(adapter, tmp_path / "ckpt", enable_proj=True)
    keys = load_file(tmp_path / "ckpt" / "lora_weights.safetensors")
    assert "base_lm.layers.0.self_attn.q_proj.lora_A" in keys and "enc_to_lm_proj.lora_B" in keys

    result = invoke(inspect_main, tmp_path / "ckpt", "--model", tiny_voxcpm, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["format"], report["family"], report["r"], report["scaling"]) == (
        "voxcpm",
        "voxcpm",
        4,
        4.0,
    )
    assert (
        report["layers"] == {"base_lm": "0-1", "residual_lm": "0", "dit": "0-1"} and report["problems"] == []
    )
    assert report["targets"][-3:] == ["enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj"]

    result = invoke(
        merge_main, "--model", tiny_voxcpm, "--adapter", tmp_path / "ckpt" / "lora_weights.safetensors",
        "-o", tmp_path / "m",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["merged"] == 23
    assert_merged_exactly(tiny_voxcpm, tmp_path / "m", read_adapter(tmp_path / "ckpt"))
    assert (tmp_path / "m" / "audiovae.pth").read_bytes() == (tiny_voxcpm / "audiovae.pth").read_bytes()


def test_voxcpm_merge_casts_and_keeps_config(tiny_voxcpm, tmp_path):
    write_adapter(trained(tiny_voxcpm, LoraSettings()), tmp_path / "a")
    result = invoke(
        merge_main,
        "--model",
        tiny_voxcpm,
        "--adapter",
        tmp_path / "a",
        "-o",
        tmp_path / "m",
        "--dtype",
        "bf16",
    )
    assert result.exit_code == 0, result.output
    merged = load_file(tmp_path / "m" / "model.safetensors")
    assert {t.dtype for t in merged.values()} == {torch.bfloat16}
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"] == "voxcpm" and config["dtype"] == "bfloat16"


def test_voxcpm_config_without_alpha_is_refused(tiny_voxcpm, tmp_path):
    write_voxcpm_lora(trained(tiny_voxcpm, LoraSettings()), tmp_path / "ckpt")
    (tmp_path / "ckpt" / "lora_config.json").write_text(
        json.dumps({"base_model": "x", "lora_config": {"r": 8}})
    )
    result = invoke(inspect_main, tmp_path / "ckpt")
    assert result.exit_code == 1 and "no lora_config with r and alpha" in result.stderr


def test_an_adapter_for_another_family_does_not_fit(tiny_higgs, tiny_voxcpm, tmp_path):
    write_adapter(new_adapter_for(tiny_higgs, LoraSettings()), tmp_path / "h")
    result = invoke(merge_main, "--model", tiny_voxcpm, "--adapter", tmp_path / "h", "-o", tmp_path / "m")
    assert result.exit_code == 1 and "4 adapter keys do not fit the base" in result.stderr
    assert not (tmp_path / "m").exists()
