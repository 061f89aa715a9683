"""VoxCPM through the trainer's crash safety, with the CSM and Higgs tests' own check
(`tests.fixtures.kill_resume`): SIGKILL at a random moment, or SIGTERM, then --resume ends with the
uninterrupted run's files, bitwise (voxlora's adapter and VoxCPM's own lora_weights.safetensors).

A few seconds of training on the tiny VoxCPM; the SIGKILLed run is a real process, the others run
in this process (SIGTERM sent to it inside a step, as `tests/robust/test_signals.py` does).
``--dropout`` makes torch's generator matter: the checkpoint must carry it (the diffusion draws are
per clip, `voxlora.families.voxcpm.draws`).
"""

import os
import signal

import pytest
from voxlora.train import checkpoint, progress

from tests.fixtures.kill_resume import (
    Killed,
    invoke,
    kill_after_checkpoint,
    resume_and_compare,
    train_reference,
)
from tests.trainkit import make_manifest

STEPS = 6
ARGS = ["--max-steps", STEPS, "--batch-size", 2, "--save-every", 1, "--log-every", 1, "--dropout", 0.1,
        "--targets", "attn,proj", "--lr", 1e-2]  # fmt: skip


@pytest.fixture(scope="module")
def job(tiny_v1, tmp_path_factory):
    """(train_args(out, *extra), the uninterrupted run)."""
    folder = tmp_path_factory.mktemp("voxcpm-robust")
    manifest = make_manifest(folder, n=4, seconds=0.1)

    def train_args(out, *extra):
        return ["--model", tiny_v1, "--manifest", manifest, "-o", out,
                "--cache-dir", folder / "latents", *ARGS, *extra]  # fmt: skip

    return train_args, train_reference(train_args(folder / "reference"))


def test_sigkill_then_resume_equals_an_uninterrupted_run(job, tmp_path):
    args, reference = job
    out = tmp_path / "run"
    killed = kill_after_checkpoint(args(out), out, STEPS, tmp_path / "killed.err")
    resume_and_compare(args(out, "--resume"), killed, reference, STEPS)


def test_sigterm_saves_a_checkpoint_and_resume_equals_an_uninterrupted_run(job, tmp_path, monkeypatch):
    args, reference = job

    def step(bars, state):  # a real SIGTERM to this process, inside step 2
        if state.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(progress.Bars, "step", step)
    out = tmp_path / "run"
    stopped = invoke(args(out))
    monkeypatch.undo()
    assert stopped.exit_code == 143, stopped.output
    assert stopped.stderr.splitlines()[-1] == (
        f"lora-train: stopped by SIGTERM after step 2, saved {checkpoint.step_dir(out, 2)}; "
        "to continue, run the same command with --resume"
    )  # the step finished and was saved whole
    assert checkpoint.checkpoints(out)[-1].name == "step_0000002"
    resume_and_compare(args(out, "--resume"), Killed(out, 2, "SIGTERM in step 2"), reference, STEPS)
