"""On a CUDA GPU only: one bf16 LoRA step on the tiny model, synth on the GPU, and the pinned,
asynchronous batch transfer. Skipped, with the reason, everywhere else."""

import json

import pytest
import torch
from click.testing import CliRunner

from tests.speed.conftest import clips, setup  # noqa: F401  (the CPU tests' model and store)
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
    from voxlora.families.csm.batches import Batch

    batch = Batch(clips=torch.arange(2), tokens=torch.zeros(2, 3, dtype=torch.long),
                  codes=torch.zeros(2, 3, 4, dtype=torch.long), kind=torch.zeros(2, 3, dtype=torch.int8),
                  decoder=torch.zeros(2, 3, dtype=torch.bool), n_backbone=2, n_decoder=6, frames=2)  # fmt: skip
    moved = batch.to("cuda")
    torch.cuda.synchronize()
    for name, value in vars(moved).items():
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cuda", name


def test_a_training_step_that_does_not_log_never_syncs(setup):  # noqa: F811
    """torch's own check: any host sync inside steps 1-3 raises (the CPU twin: tests/speed/test_no_sync.py)."""
    from voxlora.train import batches
    from voxlora.train.loop import train

    model, store, config = setup(device="cuda", dtype="bf16", max_steps=4, log_every=4, save_minutes=0)
    planned = [b for _, b in zip(range(4), batches.iterate_batches(store, config), strict=False)]

    def iterate(*args):
        for i, b in enumerate(planned):
            torch.cuda.set_sync_debug_mode("error" if i < 3 else "default")  # step 4 logs: it may read
            yield b

    try:
        records = list(train(model, store, config, iterate_batches=iterate))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert [r["step"] for r in records] == [4]


def test_compile_on_the_gpu_with_inductor(setup):  # noqa: F811
    from voxlora.backends.torch.compile import Compiled, attach
    from voxlora.families.csm.batches import Buckets
    from voxlora.train.loop import train

    model, store, config = setup(device="cuda", dtype="bf16", max_steps=3, log_every=1)
    csm = model.get_base_model()
    attach(
        csm,
        Compiled({"backbone": csm.backbone_model, "decoder": csm.depth_decoder.model}, backend="inductor"),
    )
    store.buckets = Buckets(int(csm.config.max_position_embeddings), rows=config.batch_size)
    records = list(train(model, store, config))
    assert all(r["loss"] > 0 for r in records) and 1 <= records[-1]["compiles"] <= 4
