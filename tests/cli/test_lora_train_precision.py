"""bf16 and fp16 LoRA steps run on the CPU and their loss stays within tolerance of fp32's."""

import json

import pytest
from click.testing import CliRunner
from voxlora.cli.lora_train import main

from tests.trainkit import make_manifest


def losses(tiny_csm, manifest, out, dtype) -> list[dict]:
    args = ["--model", tiny_csm, "--manifest", manifest, "-o", out, "--dtype", dtype, "--max-steps", 2,
            "--log-every", 1, "--batch-size", 2, "--lr", 1e-3, "--seed", 0, "--cache-dir", out.parent / "codes"]  # fmt: skip
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if '"loss"' in line]


@pytest.fixture(scope="module")
def runs(tiny_csm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    manifest = make_manifest(folder / "data", n=2)
    return {dtype: losses(tiny_csm, manifest, folder / dtype, dtype) for dtype in ("fp32", "bf16", "fp16")}


@pytest.mark.parametrize("dtype, tolerance", [("bf16", 0.03), ("fp16", 0.01)])
def test_half_precision_loss_is_near_fp32(runs, dtype, tolerance):
    reference, half = runs["fp32"], runs[dtype]
    assert [r["step"] for r in half] == [1, 2]
    for ours, theirs in zip(half, reference, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=tolerance)
        assert ours["backbone_loss"] == pytest.approx(theirs["backbone_loss"], rel=tolerance)
        assert ours["grad_norm"] > 0
    assert half[0]["loss"] != reference[0]["loss"]  # it did compute in lower precision


def test_pad_fraction_is_the_share_of_padded_positions(runs):
    """Two clips of 0.4 and 0.5 s in one batch: the shorter one is padded by 0.1 s of frames."""
    for record in runs["fp32"]:
        assert 0 < record["pad_fraction"] < 0.1


def test_dtype_auto_is_bf16_on_a_gpu_only(monkeypatch):
    import torch
    from voxlora.train.config import TrainConfig, resolve

    def config(**kw):
        return resolve(TrainConfig(model="m", manifest="t.jsonl", out="o", backend="torch", **kw))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config().dtype == "fp32" and config(device="cpu").dtype == "fp32"
    assert config(device="cuda:1").dtype == "bf16" and config(device="cuda", dtype="fp32").dtype == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config().dtype == "bf16"
    assert resolve(TrainConfig(model="m", manifest="t", out="o", backend="mlx")).dtype == "fp32"


def test_a_missing_gpu_is_one_line(tiny_csm, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    manifest = make_manifest(tmp_path / "data", n=1)
    args = ["--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--device", "cuda:3"]
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]  # the shared device check's one line (voxlora.devices)
    assert last.startswith("Error: --device cuda:3: not available on this machine")


def test_grad_checkpointing_recomputes_and_changes_nothing(tiny_csm, runs, tmp_path_factory, monkeypatch):
    import torch.utils.checkpoint as ckpt

    calls = []
    real = ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    folder = tmp_path_factory.getbasetemp() / "precision0"  # the runs fixture's folder and clips
    manifest = folder / "data" / "train.jsonl"
    out = tmp_path_factory.mktemp("ckpt") / "run"
    args = ["--model", tiny_csm, "--manifest", manifest, "-o", out, "--dtype", "fp32", "--max-steps", 2,
            "--log-every", 1, "--batch-size", 2, "--lr", 1e-3, "--seed", 0, "--cache-dir", folder / "codes",
            "--grad-checkpointing"]  # fmt: skip
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if '"loss"' in line]
    assert calls  # the layers really ran through torch.utils.checkpoint
    for ours, plain in zip(records, runs["fp32"], strict=True):
        assert ours["loss"] == pytest.approx(plain["loss"], rel=1e-5)
        assert ours["grad_norm"] == pytest.approx(plain["grad_norm"], rel=1e-4)
