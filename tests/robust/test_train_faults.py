"""Faults lora-train meets before and during training: NaN/inf, a full disk, a changed setup, damage."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from voxlora.families.csm.loss import csm_loss
from voxlora.train import checkpoint, loop

from tests.robust.conftest import invoke, train_args
from tests.trainkit import make_manifest


def nan_at_call(n: int, where: str = "loss"):
    """A csm_loss whose n-th call gives a NaN loss, or (where="grad") a finite loss with NaN gradients."""
    calls = []

    def loss(model, batch):
        calls.append(1)
        backbone, decoder = csm_loss(model, batch)
        if len(calls) != n:
            return backbone, decoder
        if where == "loss":
            return backbone * float("nan"), decoder
        w = next(p for p in model.parameters() if p.requires_grad)
        return backbone + torch.sqrt(torch.zeros(()) + 0 * w.sum()), decoder  # d sqrt(0) = inf: NaN grads

    return loss


@pytest.mark.parametrize("where, what", [("loss", "the loss is nan"), ("grad", "the gradient norm is nan")])
def test_nan_stops_training_and_keeps_the_last_good_checkpoint(
    tiny_csm, corpus, tmp_path, monkeypatch, where, what
):
    monkeypatch.setitem(loop.train.__kwdefaults__, "loss", nan_at_call(3, where))
    out = tmp_path / "run"
    result = invoke(train_args(tiny_csm, corpus, out))
    assert result.exit_code == 1
    good = checkpoint.step_dir(out, 2)
    assert result.stderr.splitlines()[-1] == (
        f"Error: step 3: {what}; training stopped (the last good checkpoint, {good}, is intact; "
        "a lower --lr or a --max-grad-norm may help)"
    )
    assert [p.name for p in checkpoint.checkpoints(out)] == ["step_0000001", "step_0000002"]
    assert checkpoint.read_checkpoint(good)[0]["step"] == 2
    tensors = load_file(good / "adapter_model.safetensors")
    assert all(torch.isfinite(t).all() for t in tensors.values())
    assert not (out / "adapter_model.safetensors").exists()
    assert [json.loads(x)["step"] for x in result.stdout.splitlines()] == [1, 2]


def test_nan_before_any_checkpoint_says_so(tiny_csm, corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(loop.train.__kwdefaults__, "loss", nan_at_call(1))
    result = invoke(train_args(tiny_csm, corpus, tmp_path / "run"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith(
        "Error: step 1: the loss is nan; training stopped (no checkpoint"
    )


def test_no_room_for_a_checkpoint_is_refused_before_any_work(tiny_csm, corpus, tmp_path, monkeypatch):
    from voxlora import diskspace

    monkeypatch.setattr(diskspace, "free_bytes", lambda folder: 5 * 2**20)
    out = tmp_path / "run"
    result = invoke(train_args(tiny_csm, corpus, out))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: not enough free space for a checkpoint (needs about 16.5 MiB, 5.0 MiB free)\n"
    )
    assert not (tmp_path / "voxlora-codes").exists()  # no clip was encoded
    needed = checkpoint.estimate_bytes(40960, "adamw")  # all-linear rank 8 on the tiny CSM: weights, m, v
    assert needed == 491520


def test_resume_with_other_model_or_lora_options_lists_every_difference(
    tiny_csm, other_tiny_csm, corpus, tmp_path
):
    out = tmp_path / "run"
    first = invoke([*train_args(tiny_csm, corpus, out), "--max-steps", 2])
    assert first.exit_code == 0, first.output
    args = train_args(other_tiny_csm, corpus, out, "--resume", "--max-steps", 2, "-r", 4, "--alpha", 32)
    result = invoke(args)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'step_0000002'}: this run differs from the checkpoint's: "
        f"model {str(other_tiny_csm)!r} (checkpoint: {str(tiny_csm)!r}); "
        "lora.alpha 32.0 (checkpoint: 16.0); lora.rank 4 (checkpoint: 8)\n"
    )


def test_resume_refuses_changed_data_and_skips_a_damaged_checkpoint(tiny_csm, tmp_path, caplog):
    manifest = make_manifest(tmp_path / "data", n=4)
    out = tmp_path / "run"
    assert invoke(train_args(tiny_csm, manifest, out, "--max-steps", 3)).exit_code == 0
    (out / "step_0000003" / checkpoint.STATE_TENSORS).write_bytes(b"\0" * 10)  # a disk fault
    partial = out / ".step_0000004.x1y2.tmp"  # what a kill during a checkpoint write leaves
    partial.mkdir()
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:3]) + "\n")
    result = invoke(train_args(tiny_csm, manifest, out, "--max-steps", 3, "--resume"))
    assert result.exit_code == 1
    assert f"skipping {out / 'step_0000003'}: damaged checkpoint" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: {out / 'step_0000002'}: the training data differs from the checkpoint's (a clip added, "
        "removed, changed or skipped since); resuming would not continue the same run"
    )
    assert not partial.exists()


def test_checkpoint_size_estimate_and_partial_folders(tmp_path):
    assert checkpoint.estimate_bytes(10, "sgd", extra=7) == 47
    left = [".step_0000002.abc.tmp", ".step_0000001.old-12", ".weights-99", "..weights-99.k2j_x9ab.tmp",
            ".merged.q8e1zz0w.tmp", ".merged.old-7"]  # fmt: skip
    for name in (*left, ".keep", "step_0000001", "merged"):
        (tmp_path / name).mkdir()
    files = [".adapter_model.safetensors.a1b2c3d4.tmp", ".adapter_config.json.zz99zz99.tmp",
             ".metrics.jsonl.0abc_def.tmp", ".write-test-41"]  # fmt: skip
    for name in files:
        (tmp_path / name).write_bytes(b"partial")
    removed = checkpoint.clean_partial(tmp_path)
    assert sorted(p.name for p in removed) == sorted(left + files)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep", "merged", "step_0000001"]
    shutil.rmtree(tmp_path / "step_0000001")
    assert checkpoint.newest_complete(tmp_path) is None


def test_a_folder_moved_aside_by_a_killed_replacement_is_restored(tmp_path, monkeypatch):
    from voxlora import atomic

    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "model.safetensors").write_bytes(b"old")
    real_replace, calls = atomic.os.replace, []

    def killed_at_second_rename(src, dst):
        calls.append(1)
        if len(calls) == 2:  # merged/ is aside, the new folder not yet in: SIGKILL lands here
            raise SystemExit(137)
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_at_second_rename)
    with pytest.raises(SystemExit), atomic.atomic_dir(merged) as tmp:
        (tmp / "model.safetensors").write_bytes(b"new")
    monkeypatch.undo()
    assert not merged.exists() and [p.name for p in tmp_path.iterdir()][0].startswith(".merged.old-")
    assert checkpoint.clean_partial(tmp_path) == []  # restored, not removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]
    assert (merged / "model.safetensors").read_bytes() == b"old"
    (tmp_path / ".merged.old-12").mkdir()  # aside while merged/ exists: the swap had finished
    assert [p.name for p in checkpoint.clean_partial(tmp_path)] == [".merged.old-12"]


def test_a_kill_while_the_final_adapter_is_replaced_leaves_no_mixed_adapter(tiny_csm, tmp_path, monkeypatch):
    from voxlora.adapter import CONFIG, read_adapter
    from voxlora.errors import VoxloraError
    from voxlora.train import saving

    out = tmp_path / "run"
    manifest = make_manifest(tmp_path / "data", n=2)
    assert invoke(train_args(tiny_csm, manifest, out, "--max-steps", 1)).exit_code == 0
    staging = out / ".weights-1"
    shutil.copytree(out, staging, ignore=lambda d, names: [n for n in names if n.startswith(("step_", "."))])
    real_replace, calls = saving.os.replace, []

    def killed_after_first_file(src, dst):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit(137)
        real_replace(src, dst)

    monkeypatch.setattr(saving.os, "replace", killed_after_first_file)
    with pytest.raises(SystemExit):
        saving._move_files_into(staging, out, last=CONFIG)
    assert not (out / CONFIG).exists() and (staging / CONFIG).exists()  # the config goes last
    with pytest.raises(VoxloraError, match=f"{CONFIG}: missing"):
        read_adapter(out)
    resumed = invoke(train_args(tiny_csm, manifest, out, "--max-steps", 1, "--resume"))
    assert resumed.exit_code == 0, resumed.output  # --resume writes the result again
    assert read_adapter(out).r == 8 and not [p.name for p in out.iterdir() if p.name.startswith(".")]
