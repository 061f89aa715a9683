"""lora-train and synth on a tiny Higgs Audio v2: the run matches a plain transformers + peft loop step
for step, peft and from_pretrained load what it writes with the same logits, and synth speaks 24 kHz
audio, deterministically, changed by an adapter, the same direct or merged."""

import json

import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from voxlora.cli.lora_init import cli as lora_init
from voxlora.cli.lora_train import cli as lora_train
from voxlora.families.higgs_audio_v2 import batch as hb
from voxlora.families.higgs_audio_v2.load import load_model
from voxlora.synth.config import SynthConfig
from voxlora.synth.requests import ContextClip, Request
from voxlora.synth.synthesizer import Synthesizer

from tests.trainkit import make_manifest

STEPS, LR = 4, 2e-3
PLAIN = ["--lr", LR, "--warmup-steps", 0, "--lr-schedule", "constant", "--log-every", 1, "--batch-size", 4]


def run(cli, args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def trained(tiny_higgs_hf, tmp_path_factory):
    """lora-init (r 4, attn + audio-ffn), then lora-train on 4 clips, one batch of all 4 per step."""
    from voxlora.codes_cache import file_sha256

    before = {f.name: file_sha256(f) for f in tiny_higgs_hf.iterdir() if f.is_file()}
    root = tmp_path_factory.mktemp("higgs-run")
    manifest = make_manifest(root / "data", n=4, seconds=0.4)
    a0 = root / "a0"
    run(lora_init, ["--model", tiny_higgs_hf, "-r", 4, "--targets", "attn,audio-ffn", "-o", a0, "--seed", 3])
    out = root / "run"
    common = ["--model", tiny_higgs_hf, "--manifest", manifest, "--max-steps", STEPS, "--reference", "none"]
    run(lora_train, [*common, "--adapter", a0, "-o", out, "--save-mode", "both", *PLAIN])
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {
        f.name: file_sha256(f) for f in tiny_higgs_hf.iterdir() if f.is_file()
    } == before  # base untouched
    return {"manifest": manifest, "a0": a0, "out": out, "losses": [m["loss"] for m in metrics if "loss" in m]}


def test_training_follows_a_plain_transformers_peft_loop(trained, tiny_higgs_hf, higgs_processor):
    import soundfile
    from peft import PeftModel

    records = [json.loads(x) for x in trained["manifest"].read_text().splitlines()]
    audio = [soundfile.read(trained["manifest"].parent / r["audio"], dtype="float32")[0] for r in records]
    assert all(soundfile.info(trained["manifest"].parent / r["audio"]).samplerate == 24000 for r in records)
    texts = [hb.prompt_text(higgs_processor, hb.conversation(r["text"])) for r in records]
    inputs = higgs_processor(text=texts, audio=audio, output_labels=True, return_tensors="pt")
    model = PeftModel.from_pretrained(load_model(tiny_higgs_hf), trained["a0"], is_trainable=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = model(**inputs).loss  # the model's own loss; peft's labels pass straight through
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]  # it learns
    assert trained["losses"] == pytest.approx(losses, rel=1e-4)


def test_peft_loads_the_adapter_with_the_same_logits_and_the_merged_model_loads(
    trained, tiny_higgs_hf, higgs_processor
):
    from peft import PeftModel
    from transformers import HiggsAudioV2ForConditionalGeneration
    from voxlora.backends.torch.adapter_switch import AdapterSwitch

    base = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_higgs_hf)
    peft_model = PeftModel.from_pretrained(base, trained["out"])
    ours = load_model(tiny_higgs_hf)
    AdapterSwitch(ours).use(str(trained["out"]))
    text = hb.prompt_text(higgs_processor, hb.conversation("hello"))
    batch = hb.build_batch(higgs_processor, [(text, [torch.randint(0, 32, (8, 6))])], target_only=False)
    with torch.no_grad():
        want = peft_model(**batch.model_inputs()).logits
        assert torch.equal(ours(**batch.model_inputs()).logits, want)
        merged, info = HiggsAudioV2ForConditionalGeneration.from_pretrained(
            trained["out"] / "merged", output_loading_info=True
        )
        assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
        torch.testing.assert_close(merged(**batch.model_inputs()).logits, want, rtol=1e-4, atol=1e-4)
    from safetensors.torch import load_file

    trained_keys = load_file(trained["out"] / "adapter_model.safetensors").keys()
    assert trained_keys and all(
        ".lora_A." in k or ".lora_B." in k for k in trained_keys
    )  # the rest stayed frozen


@pytest.fixture(scope="module")
def direct(tiny_higgs_hf):
    return Synthesizer(SynthConfig(model=str(tiny_higgs_hf), max_seconds=1.0))


@pytest.fixture(scope="module")
def merged(tiny_higgs_hf):
    return Synthesizer(SynthConfig(model=str(tiny_higgs_hf), max_seconds=1.0, merge=True))


def speak(synth, tmp_path, adapter=None, seed=0, name="x.wav", context=()):
    return synth.speak(
        Request(text="Hello there.", out=tmp_path / name, adapter=adapter, seed=seed, context=list(context))
    )


def test_synth_writes_24k_audio_of_the_codes_length_deterministically(direct, tmp_path):
    a, b = speak(direct, tmp_path, seed=4, name="a.wav"), speak(direct, tmp_path, seed=4, name="b.wav")
    assert torch.equal(a.codes, b.codes)
    wave, rate = sf.read(tmp_path / "a.wav")
    assert rate == 24000 and len(wave) == len(a.codes) * 960
    assert a.codes.shape[1] == 8 and 0 < len(a.codes) <= 25  # --max-seconds 1: 25 frames at most
    assert int(a.codes.max()) < 32  # every id decodes: no stream bos/eos left
    assert a.record["ended"] in ("eos", "max-seconds")


def test_context_clip_and_adapter_change_the_codes_and_merged_equals_direct(
    direct, merged, trained, tmp_path
):
    clip = trained["manifest"].parent / "clips" / "clip_000.wav"
    plain = speak(direct, tmp_path, seed=2)
    cloned = speak(direct, tmp_path, seed=2, context=[ContextClip(text="The birch canoe.", audio=str(clip))])
    assert not torch.equal(plain.codes, cloned.codes)
    adapted = speak(direct, tmp_path, adapter=str(trained["out"]), seed=2)
    assert not torch.equal(plain.codes, adapted.codes)
    fused = speak(merged, tmp_path, adapter=str(trained["out"]), seed=2)
    assert torch.equal(adapted.codes, fused.codes)
    with_both = [speak(s, tmp_path, adapter=str(trained["out"]), seed=2, context=[ContextClip(text="x", audio=str(clip))])
                 for s in (direct, merged)]  # fmt: skip
    assert torch.equal(with_both[0].codes, with_both[1].codes)


def test_dry_run_prints_the_memory_estimate_and_loads_nothing(tiny_higgs_hf, trained, tmp_path):
    out = tmp_path / "never"
    args = [
        "--model",
        tiny_higgs_hf,
        "--manifest",
        trained["manifest"],
        "-o",
        out,
        "--dry-run",
        "--dtype",
        "bf16",
    ]
    record = json.loads(run(lora_train, args).stdout)
    assert record["family"] == "higgs-audio-v2" and record["dry_run"] is True
    assert record["grad_checkpointing"] is False  # a tiny model: under 2B parameters
    from safetensors.torch import load_file

    assert record["base_params"] == sum(
        t.numel() for t in load_file(tiny_higgs_hf / "model.safetensors").values()
    )
    assert (
        record["positions"] == 4 * 512
        and record["estimated_peak_GiB"] * 1024 >= record["estimate_MiB"]["weights"]
    )
    assert not out.exists()


def test_the_3b_estimates_behind_the_readme_table():
    from voxlora.train.memory import estimate

    from tests.fixtures.tiny_families import higgs_shapes

    config = dict(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                  num_attention_heads=24, num_key_value_heads=8, head_dim=128, num_codebooks=8, codebook_size=1026)  # fmt: skip
    shapes = higgs_shapes(config)
    lora = 39_452_672  # r 16, all-linear, 28 layers
    on_24 = estimate(shapes, config, lora, dtype="bf16", grad_checkpointing=True, positions=4096)
    on_48 = estimate(shapes, config, lora, dtype="bf16", grad_checkpointing=False, positions=4096)
    qlora = estimate(shapes, config, lora, quantize="4bit", grad_checkpointing=True, positions=4096)
    assert 5.3e9 < on_24["base_params"] < 5.5e9  # the 3B backbone plus the DualFFN audio path
    peak = "estimated_peak_GiB"  # the one name lora-train --dry-run uses for every family
    assert on_24[peak] < 20 < on_48[peak] < 44 and qlora[peak] < 8


def test_4bit_is_refused_off_cuda_before_anything_loads(tiny_higgs_hf, trained, tmp_path):
    args = ["--model", tiny_higgs_hf, "--manifest", trained["manifest"], "-o", tmp_path / "q", "--quantize", "4bit",
            "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(lora_train, [str(a) for a in args])
    assert result.exit_code == 1
    assert "Error: --quantize 4bit needs a CUDA GPU (bitsandbytes); this run is on cpu" in result.output


def test_full_training_saves_a_model_synth_and_from_pretrained_load(tiny_higgs_hf, trained, tmp_path):
    from transformers import HiggsAudioV2ForConditionalGeneration

    out = tmp_path / "full"
    run(lora_train, ["--model", tiny_higgs_hf, "--manifest", trained["manifest"], "-o", out, "--full",
                     "--max-steps", 1, "--reference", "none"])  # fmt: skip
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(out)
    assert not torch.equal(model.audio_lm_head.weight, load_model(tiny_higgs_hf).audio_lm_head.weight)
    clip = Synthesizer(SynthConfig(model=str(out), max_seconds=0.4)).speak(
        Request(text="Hi.", out=tmp_path / "f.wav")
    )
    assert sf.info(tmp_path / "f.wav").samplerate == 24000 and clip.codes.shape[1] == 8


def test_synth_cli_batch_from_stdin_with_several_adapters_and_a_context(tiny_higgs_hf, trained, tmp_path):
    from voxlora.cli.synth import main as synth_main

    clip = trained["manifest"].parent / "clips" / "clip_001.wav"
    lines = [
        "Plain text first.",
        json.dumps({"text": "With the trained adapter.", "adapter": str(trained["out"]), "seed": 3}),
        json.dumps({"text": "With lora-init's.", "adapter": str(trained["a0"]), "seed": 3}),
        json.dumps(
            {"text": "Cloned.", "context": [{"audio": str(clip), "text": "Glue the sheet."}], "seed": 3}
        ),
    ]
    args = ["--model", str(tiny_higgs_hf), "--max-seconds", "0.6", "--out-dir", str(tmp_path / "gen")]
    result = CliRunner().invoke(synth_main.cli, args, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["adapter"] for r in records] == [None, str(trained["out"]), str(trained["a0"]), None]
    for r in records:
        wave, rate = sf.read(r["audio"])
        assert rate == 24000 and len(wave) == r["frames"] * 960 and r["frames"] <= 15
