"""Higgs Audio v2 through the trainer's crash safety and DDP, with the CSM tests' own machinery (tests.fixtures.kill_resume):
SIGKILL at a random moment then --resume is bitwise the uninterrupted run; 2 gloo processes of
batch 2 train as 1 process of batch 4."""

import json
import subprocess
import sys

import pytest

from tests.distributed.test_ddp import LORA_TRAIN, adapter, assert_close, in_process
from tests.distributed.test_ddp import env as ddp_env
from tests.fixtures.kill_resume import kill_after_checkpoint, resume_and_compare, train_reference
from tests.trainkit import make_manifest

STEPS = 6
ARGS = ["--max-steps", STEPS, "--batch-size", 2, "--save-every", 1, "--log-every", 1, "--targets", "all-linear",
        "--dropout", 0.1, "--lr", 1e-2, "--reference", "auto"]  # fmt: skip


def train_args(model, manifest, out, *extra) -> list[str]:
    return [str(a) for a in ("--model", model, "--manifest", manifest, "-o", out, *ARGS, *extra)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("higgs-robust"), n=4, seconds=0.3)


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_higgs_hf, corpus, tmp_path):
    def args(out, *extra):
        return train_args(tiny_higgs_hf, corpus, out, "--cache-dir", tmp_path / "codes", *extra)

    reference = train_reference(args(tmp_path / "reference"))
    out = tmp_path / "run"
    killed = kill_after_checkpoint(args(out), out, STEPS, tmp_path / "killed.err")
    resume_and_compare(args(out, "--resume"), killed, reference, STEPS)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="gloo processes as the DDP tests run them")
def test_two_processes_of_batch_2_train_as_one_process_of_batch_4(tiny_higgs_hf, corpus, tmp_path):
    common = ["--model", tiny_higgs_hf, "--manifest", corpus, "--log-every", 1, "--lr", 1e-2, "--seed", 3,
              "--targets", "all-linear", "--max-steps", 3, "--cache-dir", tmp_path / "codes"]  # fmt: skip
    alone = in_process([str(a) for a in (*common, "-o", tmp_path / "alone", "--batch-size", 4)])
    out = tmp_path / "two"
    two = subprocess.run(
        [str(LORA_TRAIN), *map(str, (*common, "-o", out, "--batch-size", 2, "--nproc", 2))],
        capture_output=True, text=True, env=ddp_env(), timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert_close(adapter(out), adapter(tmp_path / "alone"))
    lines = [json.loads(x) for x in two.stdout.splitlines()]
    for ours, theirs in zip(lines[:-1], alone[:-1], strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
