"""SIGTERM and SIGINT: the step finishes, a checkpoint is saved, exit 143 / 130 with one line saying
how to resume; the resumed run ends bitwise equal to an uninterrupted one."""

import os
import re
import signal

import pytest
from voxlora.train import checkpoint, progress
from voxlora.train.signals import Interrupted, StopSignals, Terminated

from tests.robust.conftest import adapter_bytes, invoke, read_until_step, start, train_args

STOPPED = re.compile(
    r"^lora-train: stopped by (SIG\w+) after step (\d+), saved (.+); "
    r"to continue, run the same command with --resume$"
)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_a_checkpoint_and_resume_finishes_the_run(
    tiny_csm, corpus, reference, tmp_path, signum, code
):
    out = tmp_path / "run"
    proc = start(train_args(tiny_csm, corpus, out), tmp_path / "err")
    read_until_step(proc, 2)
    proc.send_signal(signum)
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == code
    stderr = (tmp_path / "err").read_text().splitlines()
    m = STOPPED.match(stderr[-1])
    assert m, stderr
    name, step, saved = m[1], int(m[2]), m[3]
    assert name == signal.Signals(signum).name and step >= 2
    assert saved == str(checkpoint.step_dir(out, step))  # the step it finished, saved whole
    assert checkpoint.read_checkpoint(saved)[0]["step"] == step
    assert checkpoint.checkpoints(out)[-1].name == f"step_{step:07d}"
    assert not (out / "adapter_model.safetensors").exists()
    assert "Traceback" not in "\n".join(stderr) and all('"step"' in x for x in rest.splitlines())

    resumed = invoke(train_args(tiny_csm, corpus, out, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert adapter_bytes(out) == adapter_bytes(reference[0])  # bitwise


def test_before_training_a_signal_acts_at_once_and_a_second_one_too():
    with StopSignals() as stop:
        with pytest.raises(Terminated):  # not armed (data preparation): stop now, nothing to save
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    with StopSignals() as stop:
        stop.arm()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == signal.SIGTERM  # armed: noted, the loop stops after the step
        with pytest.raises(Interrupted):  # a second signal does not wait (and says what is saved)
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


@pytest.mark.parametrize(
    "signum, code, at_step, newest",
    [(signal.SIGTERM, 143, 3, 2), (signal.SIGINT, 130, 3, 2), (signal.SIGTERM, 143, 1, None)],
)
def test_a_second_signal_during_training_names_the_newest_checkpoint(
    tiny_csm, corpus, reference, tmp_path, monkeypatch, signum, code, at_step, newest
):
    def step(bars, state):  # inside step ``at_step``, before its checkpoint is written
        if state.step == at_step:
            os.kill(os.getpid(), signum)  # the first: finish the step, save, stop
            os.kill(os.getpid(), signum)  # the second, at once

    monkeypatch.setattr(progress.Bars, "step", step)
    out = tmp_path / "run"
    result = invoke(train_args(tiny_csm, corpus, out))
    assert result.exit_code == code, result.output
    name = signal.Signals(signum).name
    if newest is None:
        assert checkpoint.checkpoints(out) == []
        assert result.stderr.splitlines()[-1] == (
            f"lora-train: stopped at once by a second {name}; no checkpoint saved yet, "
            "nothing to resume: run the same command again"
        )
        return
    saved = checkpoint.step_dir(out, newest)
    assert result.stderr.splitlines()[-1] == (
        f"lora-train: stopped at once by a second {name}; newest checkpoint {saved}; "
        "to continue, run the same command with --resume"
    )
    assert checkpoint.checkpoints(out)[-1] == saved and checkpoint.read_checkpoint(saved)[0]["step"] == newest
    monkeypatch.undo()
    resumed = invoke(train_args(tiny_csm, corpus, out, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert adapter_bytes(out) == adapter_bytes(reference[0])  # bitwise
