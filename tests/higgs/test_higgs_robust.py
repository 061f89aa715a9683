"""Higgs Audio v2 through the trainer's crash safety and DDP, with the CSM tests' own machinery:
SIGKILL at a random moment then --resume is bitwise the uninterrupted run; 2 gloo processes of
batch 2 train as 1 process of batch 4."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
from voxlora.train import checkpoint

from tests.distributed.test_ddp import LORA_TRAIN, adapter, assert_close, in_process
from tests.distributed.test_ddp import env as ddp_env
from tests.robust.conftest import adapter_bytes, invoke, read_until_step, run, start
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
    result = invoke(
        train_args(tiny_higgs_hf, corpus, tmp_path / "reference", "--cache-dir", tmp_path / "codes")
    )
    assert result.exit_code == 0, result.output
    ref_lines = [json.loads(x) for x in result.stdout.splitlines()][:-1]

    seed = random.randrange(10**6)
    rng = random.Random(seed)
    k, fraction = rng.randint(2, STEPS - 2), rng.random()
    out = tmp_path / "run"
    proc = start(
        train_args(tiny_higgs_hf, corpus, out, "--cache-dir", tmp_path / "codes"), tmp_path / "killed.err"
    )
    why = f"killed at {fraction:.2f} of a step after step {k} (seed {seed})"
    try:
        read_until_step(proc, k - 1)
        before = time.perf_counter()
        read_until_step(proc, k)
        time.sleep(fraction * (time.perf_counter() - before))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, why
    saved = checkpoint.checkpoints(out)
    newest = int(saved[-1].name.removeprefix("step_"))
    assert k <= newest < STEPS, why

    resumed = run(train_args(tiny_higgs_hf, corpus, out, "--cache-dir", tmp_path / "codes", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert [r["step"] for r in lines[:-1]] == list(range(newest + 1, STEPS + 1)), why
    assert adapter_bytes(out) == adapter_bytes(tmp_path / "reference"), why  # bitwise
    assert [r["loss"] for r in lines[:-1]] == [r["loss"] for r in ref_lines[newest:]], why


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
