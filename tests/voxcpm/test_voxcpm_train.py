"""lora-train --model VOXCPM: VoxCPM's own loss on cached latents, its own LoRA files, --full."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.cli.lora_train import main as train_main


def invoke(*args):
    return CliRunner().invoke(train_main.cli, list(map(str, args)))


def tone(seconds, freq, sr):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * math.pi * freq * t) * np.hanning(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voxcpm-data")
    clips = [("a.wav", "Hello there", 0.12, 220, 16000), ("b.wav", "Hi", 0.08, 330, 22050)]  # b: resampled
    clips += [("c.wav", "Good morning", 0.1, 440, 16000)]
    for name, _, seconds, freq, sr in clips:
        sf.write(folder / name, tone(seconds, freq, sr), sr)
    lines = [{"audio": name, "text": text} for name, text, *_ in clips]
    lines[2]["ref_audio"] = "a.wav"  # VoxCPM's prompt clip
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder / "train.jsonl"


def test_lora_run_writes_voxcpm_own_lora_that_its_loader_takes_whole(tiny_v1, manifest, tmp_path):
    from voxlora.families.voxcpm.runtime import classes

    out = tmp_path / "run"
    args = ["--model", tiny_v1, "--manifest", manifest, "-o", out, "--max-steps", "3", "--batch-size", "2"]
    result = invoke(
        *args, "--targets", "attn,proj", "-r", "4", "--alpha", "8", "--lr", "0.01", "--save-mode", "both"
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["adapter"] == str(out) and records[-1]["step"] == 3
    assert all(math.isfinite(r["loss"]) for r in records if "loss" in r)
    info = json.loads((out / "lora_config.json").read_text())
    cfg = info["lora_config"]
    assert (cfg["enable_lm"], cfg["enable_dit"], cfg["enable_proj"], cfg["r"], cfg["alpha"]) == (
        True,
        True,
        True,
        4,
        8,
    )
    assert sorted(cfg["target_modules_lm"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert cfg["target_proj_modules"] == ["enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj"]

    k = classes("voxcpm")
    own = k.model.from_local(
        str(tiny_v1), optimize=False, training=True, device="cpu", lora_config=k.lora_config(**cfg)
    )
    loaded, skipped = own.load_lora_weights(str(out), device="cpu")
    tensors = load_file(out / "lora_weights.safetensors")
    assert skipped == [] and sorted(loaded) == sorted(tensors)
    assert sorted(loaded) == sorted(n for n, _ in own.named_parameters() if "lora_" in n)
    peft = load_file(out / "adapter_model.safetensors")
    moved = [n for n, t in tensors.items() if n.endswith("lora_B") and t.abs().sum() > 0]
    assert moved  # training moved B away from zero
    for name, t in tensors.items():  # the same numbers as voxlora's peft-layout file
        assert torch.equal(peft[f"base_model.model.{name}.weight"], t)
    meta = json.loads((out / "voxlora.json").read_text())
    assert meta["voxcpm"] == {"sample_rate": 16000, "architecture": "voxcpm"}

    # --save-mode both: OUT/merged is a folder VoxCPM's own from_local loads, the LoRA merged in
    merged = k.model.from_local(str(out / "merged"), optimize=False, training=True, device="cpu")
    base = load_file(tiny_v1 / "model.safetensors")
    q = "base_lm.layers.0.self_attn.q_proj"
    delta = tensors[f"{q}.lora_B"] @ tensors[f"{q}.lora_A"] * (8 / 4)
    assert torch.allclose(
        merged.base_lm.layers[0].self_attn.q_proj.weight, base[f"{q}.weight"] + delta, atol=1e-6
    )
    assert torch.equal(merged.stop_head.weight, base["stop_head.weight"])


def test_full_run_is_a_folder_voxcpm_loads(tiny_v1, manifest, tmp_path):
    from voxlora.families.voxcpm.runtime import classes

    out = tmp_path / "full"
    result = invoke(
        "--model", tiny_v1, "--manifest", manifest, "-o", out, "--max-steps", "2", "--full", "--lr", "1e-3"
    )
    assert result.exit_code == 0, result.output
    k = classes("voxcpm")
    model = k.model.from_local(str(out), optimize=False, training=True, device="cpu")
    saved = load_file(out / "model.safetensors")
    base = load_file(tiny_v1 / "model.safetensors")
    assert set(saved) == set(base)
    assert any(not torch.equal(saved[n], base[n]) for n in base)  # it trained
    assert torch.equal(model.stop_head.weight, saved["stop_head.weight"])


def test_resume_from_a_checkpoint_is_bitwise_the_uninterrupted_run(tiny_v1, manifest, tmp_path):
    import shutil

    args = ["--model", tiny_v1, "--manifest", manifest, "--max-steps", "4", "--batch-size", "1"]
    args += ["--save-every", "1", "--log-every", "1", "--dropout", "0.1", "--lr", "0.01"]
    whole = tmp_path / "whole"
    first = invoke(*args, "-o", whole)
    assert first.exit_code == 0, first.output
    cut = tmp_path / "cut"  # as a run killed after step 2 leaves it: checkpoints up to step 2, no result
    shutil.copytree(whole, cut)
    for name in ("step_0000003", "step_0000004"):
        shutil.rmtree(cut / name, ignore_errors=True)
    for f in cut.iterdir():
        if f.is_file() and f.name != "metrics.jsonl" and not f.name.startswith("voxlora-train"):
            f.unlink()
    resumed = invoke(*args, "-o", cut, "--resume")
    assert resumed.exit_code == 0, resumed.output
    for name in ("adapter_model.safetensors", "lora_weights.safetensors"):
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    losses = [json.loads(x)["loss"] for x in first.stdout.splitlines() if "loss" in x]
    again = [json.loads(x)["loss"] for x in resumed.stdout.splitlines() if "loss" in x]
    assert again == losses[2:]


def test_max_batch_frames_is_a_padded_size_budget(tiny_v1, manifest, tmp_path):
    """Every micro-batch VoxCPM trains on, padded, holds at most --max-batch-frames positions."""
    from types import SimpleNamespace

    from voxlora.codes_cache import CodesCache
    from voxlora.families.voxcpm.train_torch import TorchTraining
    from voxlora.train.batches import plan_epoch
    from voxlora.train.recipe import read_records

    config = SimpleNamespace(device="cpu", full=False)
    model = TorchTraining(config, tiny_v1)
    records = read_records(str(manifest)) * 3
    clips, _ = model.prepare_clips(records, CodesCache(tmp_path / "cache", "x"))
    store = model.build_store(clips)
    budget = int(store.lengths.max()) * 2
    plan = plan_epoch(store.lengths, seed=0, epoch=0, max_batch_frames=budget)
    sizes = []
    for step in plan:
        for micro in step:
            batch = store.batch(micro)
            B, S = batch.tensors["text_tokens"].shape
            assert B * S <= budget and S == int(store.lengths[micro].max())
            assert batch.lengths == tuple(store.lengths[micro].tolist())  # what the per-clip draws fill
            sizes.append(B)
    assert sum(sizes) == len(store) and max(sizes) > 1  # all clips, several to a batch
