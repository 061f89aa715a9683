"""Shared by the crash-safety tests: one small training job and its uninterrupted result (the
subprocess helpers are tests.fixtures.kill_resume's)."""

import pytest

from tests.fixtures.kill_resume import (  # noqa: F401 (the robust tests import them from here)
    adapter_bytes,
    invoke,
    read_until_step,
    start,
    train_reference,
)
from tests.trainkit import make_manifest

STEPS = 8
# dropout: the RNG state matters; --save-every 1: a kill at any step finds the step before it saved
TRAIN_ARGS = ["--max-steps", STEPS, "--batch-size", 2, "--save-every", 1, "--log-every", 1,
              "--targets", "all-linear", "--dropout", 0.1]  # fmt: skip


def train_args(model, manifest, out, *extra) -> list[str]:
    return [str(a) for a in ("--model", model, "--manifest", manifest, "-o", out, *TRAIN_ARGS, *extra)]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("robust-data"), n=6)


@pytest.fixture(scope="session")
def reference(tiny_csm, corpus, tmp_path_factory):
    """The uninterrupted run: (its OUT folder, its metrics lines)."""
    return train_reference(train_args(tiny_csm, corpus, tmp_path_factory.mktemp("robust-reference") / "run"))
