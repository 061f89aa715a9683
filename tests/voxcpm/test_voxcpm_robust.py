"""VoxCPM through the trainer's crash safety, with the CSM tests' own machinery (`tests.robust`):
SIGKILL at a random moment, or SIGTERM, then --resume is bitwise the uninterrupted run.

A few seconds of training on the tiny VoxCPM; the SIGKILLed run is a real process, the others run
in this process (SIGTERM sent to it inside a step, as `tests/robust/test_signals.py` does). ``--dropout`` makes torch's generator matter: the checkpoint
must carry it (the diffusion draws are per clip, `voxlora.families.voxcpm.draws`).
"""

import json
import os
import random
import signal
import time

import pytest
from voxlora.train import checkpoint, progress

from tests.robust.conftest import invoke, read_until_step, start
from tests.trainkit import make_manifest

STEPS = 6
ARGS = ["--max-steps", STEPS, "--batch-size", 2, "--save-every", 1, "--log-every", 1, "--dropout", 0.1,
        "--targets", "attn,proj", "--lr", 1e-2]  # fmt: skip
FILES = ("adapter_model.safetensors", "lora_weights.safetensors")  # voxlora's and VoxCPM's own


@pytest.fixture(scope="module")
def job(tiny_v1, tmp_path_factory):
    """(train_args(out, *extra), the uninterrupted run's folder, its metrics lines)."""
    folder = tmp_path_factory.mktemp("voxcpm-robust")
    manifest = make_manifest(folder, n=4, seconds=0.1)

    def train_args(out, *extra):
        return [str(a) for a in ("--model", tiny_v1, "--manifest", manifest, "-o", out,
                                 "--cache-dir", folder / "latents", *ARGS, *extra)]  # fmt: skip

    result = invoke(train_args(folder / "reference"))
    assert result.exit_code == 0, result.output
    return train_args, folder / "reference", [json.loads(x) for x in result.stdout.splitlines()][:-1]


def resume_and_compare(job, out, newest: int, why: str) -> None:
    train_args, reference, ref_lines = job
    resumed = invoke(train_args(out, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    lines = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert [r["step"] for r in lines[:-1]] == list(range(newest + 1, STEPS + 1)), why
    assert [r["loss"] for r in lines[:-1]] == [r["loss"] for r in ref_lines[newest:]], why
    for name in FILES:  # bitwise
        assert (out / name).read_bytes() == (reference / name).read_bytes(), (name, why)


def test_sigkill_then_resume_equals_an_uninterrupted_run(job, tmp_path):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    k, fraction = rng.randint(2, STEPS - 2), rng.random()
    out = tmp_path / "run"
    proc = start(job[0](out), tmp_path / "killed.err")
    why = f"killed at {fraction:.2f} of a step after step {k} (seed {seed})"
    try:
        read_until_step(proc, k - 1)
        before = time.perf_counter()
        read_until_step(proc, k)
        time.sleep(fraction * (time.perf_counter() - before))  # inside step k + 1 or its checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, why
    saved = checkpoint.checkpoints(out)
    newest = int(saved[-1].name.removeprefix("step_"))
    assert k <= newest < STEPS, why
    assert not (out / "adapter_model.safetensors").exists(), why
    resume_and_compare(job, out, newest, why)


def test_sigterm_saves_a_checkpoint_and_resume_equals_an_uninterrupted_run(job, tmp_path, monkeypatch):
    def step(bars, state):  # a real SIGTERM to this process, inside step 2 (as tests/robust sends it)
        if state.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(progress.Bars, "step", step)
    out = tmp_path / "run"
    stopped = invoke(job[0](out))
    monkeypatch.undo()
    assert stopped.exit_code == 143, stopped.output
    assert stopped.stderr.splitlines()[-1] == (
        f"lora-train: stopped by SIGTERM after step 2, saved {checkpoint.step_dir(out, 2)}; "
        "to continue, run the same command with --resume"
    )  # the step finished and was saved whole
    assert checkpoint.checkpoints(out)[-1].name == "step_0000002"
    assert not (out / "lora_weights.safetensors").exists()
    resume_and_compare(job, out, 2, "stopped after step 2")
