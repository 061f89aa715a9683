"""SIGKILL at an arbitrary step, then --resume: the adapter is bitwise the uninterrupted run's.

A real lora-train process is killed with SIGKILL (nothing can be saved or cleaned up) at a random
moment after it printed step k: inside step k + 1, or while that step's checkpoint is written.
The machinery is tests.fixtures.kill_resume's, shared with the other families' tests.
"""

from tests.fixtures.kill_resume import kill_after_checkpoint, resume_and_compare
from tests.robust.conftest import STEPS, train_args


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_csm, corpus, reference, tmp_path):
    out = tmp_path / "run"
    killed = kill_after_checkpoint(train_args(tiny_csm, corpus, out), out, STEPS, tmp_path / "killed.err",
                                   last=STEPS - 3)  # fmt: skip
    resume_and_compare(train_args(tiny_csm, corpus, out, "--resume"), killed, reference, STEPS)
