"""A full disk while lora-train writes a checkpoint or its result (fault-injected, `tests.diskfull`):
the previous checkpoint stays intact and loadable, the partial write is cleaned, the error is one
line. The other commands' outputs: `test_disk_full_commands.py`."""

import pytest
from voxlora.train import checkpoint

from tests.diskfull import full_disk
from tests.robust.conftest import invoke, train_args
from tests.trainkit import make_manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("data"), n=4)


def hidden(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(tiny_csm, corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    full_disk(monkeypatch, where="step_0000003")
    result = invoke(train_args(tiny_csm, corpus, out, "--max-steps", 4))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {out}/step_0000003: cannot write the checkpoint (No space left on device); the newest complete "
        f"checkpoint, {out}/step_0000002, is intact: free some space and run the same command with --resume"
    )
    assert [p.name for p in checkpoint.checkpoints(out)] == ["step_0000001", "step_0000002"]
    assert hidden(out) == [] and checkpoint.read_checkpoint(out / "step_0000002")[0]["step"] == 2
    monkeypatch.undo()
    resumed = invoke(train_args(tiny_csm, corpus, out, "--max-steps", 4, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming from {out}/step_0000002 at step 2" in resumed.stderr


def test_a_full_disk_writing_the_adapter_is_one_line_and_cleaned(tiny_csm, corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    full_disk(monkeypatch, where=f"{out}/..weights-")  # the result, not a checkpoint's staging
    result = invoke(train_args(tiny_csm, corpus, out, "--max-steps", 2))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {out}: cannot write the adapter (No space left on device); the newest complete checkpoint, "
        f"{out}/step_0000002, is intact: free some space and run the same command with --resume"
    )
    assert hidden(out) == [] and not (out / "adapter_model.safetensors").exists()
    assert checkpoint.read_checkpoint(out / "step_0000002")[0]["step"] == 2


def test_a_full_disk_writing_the_metrics_is_one_line(tiny_csm, corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    full_disk(monkeypatch, where=f"{out}/metrics.jsonl")
    result = invoke(train_args(tiny_csm, corpus, out, "--max-steps", 2))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: {out}/metrics.jsonl: No space left on device"
    assert hidden(out) == [] and not (out / "adapter_model.safetensors").exists()
