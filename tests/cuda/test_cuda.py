"""On a CUDA GPU only: one bf16 LoRA step on the tiny model, synth on the GPU, and the pinned,
asynchronous batch transfer. Skipped, with the reason, everywhere else."""

import json

import pytest
import torch
from click.testing import CliRunner

from tests.trainkit import make_manifest

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")


def test_bf16_lora_step_on_the_gpu_is_the_default(tiny_csm, tmp_path):
    from voxlora.cli.lora_train import main

    manifest = make_manifest(tmp_path / "data", n=2)
    out = tmp_path / "run"
    args = ["--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 1, "--log-every", 1,
            "--device", "cuda:0"]  # fmt: skip
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    step = json.loads(result.stdout.splitlines()[0])
    assert step["step"] == 1 and step["loss"] > 0
    assert '"dtype": "bf16"' in (out / "voxlora-train.json").read_text()  # auto on a GPU


def test_synth_on_the_gpu(tiny_csm, tmp_path):
    from voxlora.cli.synth import main

    result = CliRunner().invoke(
        main.cli,
        [
            "--model",
            str(tiny_csm),
            "--device",
            "cuda",
            "--max-seconds",
            "0.5",
            "--seed",
            "1",
            "Hello there.",
            "-o",
            str(tmp_path / "a.wav"),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.wav").stat().st_size > 44


def test_batches_move_through_pinned_memory_asynchronously():
    from voxlora.train.batches import Batch

    batch = Batch(clips=torch.arange(2), tokens=torch.zeros(2, 3, dtype=torch.long),
                  codes=torch.zeros(2, 3, 4, dtype=torch.long), kind=torch.zeros(2, 3, dtype=torch.int8),
                  decoder=torch.zeros(2, 3, dtype=torch.bool), n_backbone=2, n_decoder=6, frames=2)  # fmt: skip
    moved = batch.to("cuda")
    torch.cuda.synchronize()
    for name, value in vars(moved).items():
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cuda", name
