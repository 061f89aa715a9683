"""synth --model VOXCPM: WAV at the model's rate, seeded, adapters switched per request, merged == direct."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from voxlora.cli.synth import main as synth_main

FAST = ["--max-seconds", "0.12", "--timesteps", "2"]


def invoke(*args, input=None):
    return CliRunner().invoke(synth_main.cli, list(map(str, args)), input=input)


@pytest.fixture(scope="module")
def adapter(tiny_v1, tmp_path_factory):
    """A VoxCPM LoRA whose B moved (as if trained), in voxlora's layout."""
    from voxlora.adapter import write_adapter
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import new_adapter_for

    a = new_adapter_for(tiny_v1, LoraSettings(rank=4, alpha=8, targets=("attn", "proj")))
    gen = torch.Generator().manual_seed(5)
    for _, B in a.lora.values():
        B.copy_(torch.randn(B.shape, generator=gen) * 0.5)
    return write_adapter(a, tmp_path_factory.mktemp("voxcpm-adapters") / "a")


def run_batch(model, out_dir, lines, *extra):
    stdin = "".join(json.dumps(r) + "\n" for r in lines)
    result = invoke("--model", model, "--out-dir", out_dir, *FAST, *extra, input=stdin)
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in result.stdout.splitlines()]
    return records, [sf.read(r["audio"], dtype="float32") for r in records]


@pytest.mark.parametrize("fixture, rate", [("tiny_v1", 16000), ("tiny_v15", 44100), ("tiny_v2", 48000)])
def test_wav_at_the_models_rate_and_seeded(request, fixture, rate, tmp_path):
    model = request.getfixturevalue(fixture)
    longer = ["--max-seconds", "0.35"] if fixture == "tiny_v15" else []  # VoxCPM1.5: 0.16 s a patch
    lines = [
        {"text": "Hello there", "seed": 3},
        {"text": "Hello there", "seed": 3},
        {"text": "Hello there", "seed": 4},
    ]
    records, waves = run_batch(model, tmp_path / "o", lines, *longer)
    assert [sr for _, sr in waves] == [rate] * 3 and all(r["sample_rate"] == rate for r in records)
    assert len(waves[0][0]) > 0
    assert np.array_equal(waves[0][0], waves[1][0])  # the same seed, the same audio
    assert not np.array_equal(waves[0][0], waves[2][0][: len(waves[0][0])])


def voxcpm_own_folder(adapter, folder):
    """The adapter as VoxCPM's trainer saves LoRA: lora_weights.safetensors + lora_config.json only."""
    from safetensors.torch import save_file
    from voxlora.adapter import read_adapter
    from voxlora.families.voxcpm.runtime import classes
    from voxlora.families.voxcpm.train_torch import own_lora

    tensors, info = own_lora(read_adapter(adapter), classes("voxcpm"))
    folder.mkdir()
    save_file(tensors, folder / "lora_weights.safetensors")
    (folder / "lora_config.json").write_text(json.dumps(info))
    return folder


def test_adapters_switch_per_request_and_merged_equals_direct(tiny_v1, adapter, tmp_path):
    own = voxcpm_own_folder(adapter, tmp_path / "own")
    adapters = (None, str(adapter), None, str(adapter), str(own))
    lines = [{"text": "Hello there", "seed": 1, "adapter": a} for a in adapters]
    _, direct = run_batch(tiny_v1, tmp_path / "d", lines)
    assert np.array_equal(direct[0][0], direct[2][0])  # the base between adapters is the base
    assert np.array_equal(direct[1][0], direct[3][0])
    assert np.array_equal(direct[1][0], direct[4][0])  # VoxCPM's own LoRA files: the same adapter
    assert direct[0][0].shape != direct[1][0].shape or not np.array_equal(direct[0][0], direct[1][0])
    _, merged = run_batch(tiny_v1, tmp_path / "m", lines, "--merge")
    for d, m in zip(direct, merged, strict=True):
        assert d[0].shape == m[0].shape and np.allclose(d[0], m[0], atol=1e-4)


def test_context_clip_is_voxcpm_prompt(tiny_v1, tmp_path):
    t = np.arange(1600) / 16000
    sf.write(tmp_path / "ref.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    args = ["--model", tiny_v1, *FAST, "--seed", "2", "Hi there"]
    plain = invoke(*args, "-o", tmp_path / "a.wav")
    ctx = invoke(
        *args, "-o", tmp_path / "b.wav", "--context", tmp_path / "ref.wav", "--context-text", "A tone"
    )
    assert plain.exit_code == 0 and ctx.exit_code == 0, ctx.output
    a, b = sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0]
    assert a.shape != b.shape or not np.array_equal(a, b)
