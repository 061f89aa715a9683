"""SIGTERM and SIGINT: the step finishes, a checkpoint is saved, exit 143 / 130 with one line saying
how to resume; the resumed run ends bitwise equal to an uninterrupted one."""

import os
import re
import signal

import pytest
from voxlora.train import checkpoint
from voxlora.train.signals import StopSignals, Terminated

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
        with pytest.raises(Terminated):  # a second signal does not wait
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
