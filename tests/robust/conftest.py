"""Shared by the crash-safety tests: one small training job, its uninterrupted result, subprocess helpers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainkit import make_manifest

LORA_TRAIN = Path(sys.executable).parent / "lora-train"
STEPS = 8
# dropout: the RNG state matters; --save-every 1: a kill at any step finds the step before it saved
TRAIN_ARGS = ["--max-steps", STEPS, "--batch-size", 2, "--save-every", 1, "--log-every", 1,
              "--targets", "all-linear", "--dropout", 0.1]  # fmt: skip


def train_args(model, manifest, out, *extra) -> list[str]:
    return [str(a) for a in ("--model", model, "--manifest", manifest, "-o", out, *TRAIN_ARGS, *extra)]


def invoke(args):
    """lora-train in this process (click's CliRunner)."""
    from click.testing import CliRunner
    from voxlora.cli.lora_train import main

    return CliRunner().invoke(main.cli, args)


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start(args, stderr_path) -> subprocess.Popen:
    """lora-train as a real process, stdout read line by line as it comes."""
    with open(stderr_path, "wb") as err:
        return subprocess.Popen(
            [str(LORA_TRAIN), *args], stdout=subprocess.PIPE, stderr=err, env=env(), text=True
        )


def run(args) -> subprocess.CompletedProcess:
    """lora-train as a real process, to the end."""
    return subprocess.run([str(LORA_TRAIN), *args], capture_output=True, text=True, env=env())


def read_until_step(proc: subprocess.Popen, step: int) -> list[dict]:
    """Metrics lines from ``proc`` until the one for ``step`` (a printed step is a saved step)."""
    seen = []
    for line in proc.stdout:
        record = json.loads(line)
        seen.append(record)
        if record.get("step") == step and "loss" in record:
            return seen
    raise AssertionError(f"lora-train ended before step {step}: {seen}")


def adapter_bytes(out) -> bytes:
    return (Path(out) / "adapter_model.safetensors").read_bytes()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("robust-data"), n=6)


@pytest.fixture(scope="session")
def reference(tiny_csm, corpus, tmp_path_factory):
    """The uninterrupted run: (its OUT folder, its metrics lines)."""
    out = tmp_path_factory.mktemp("robust-reference") / "run"
    result = invoke(train_args(tiny_csm, corpus, out))
    assert result.exit_code == 0, result.output
    return out, [json.loads(x) for x in result.stdout.splitlines()][:-1]
