"""``lora-train --nproc 2`` start: rank 0 alone prepares OUT, the other ranks wait for it.

Seen once: ``OUT: No such file or directory`` at start. Every rank probed OUT (`check_writable`:
make it, write a file, remove what it made) while rank 0 made OUT or moved an earlier run aside,
so rank 1 could remove OUT under rank 0's own probe. Here rank 1's start runs in this process up
to the point where it waits for rank 0 (the collective is replaced by a stop), and every file
system change it made on the way is recorded: there must be none. No timing, no second process.
"""

import io
import os
import shutil

import pytest

from tests.trainkit import make_manifest


class ReachedTheWait(Exception):
    pass


def record_changes(monkeypatch, root) -> list:
    """File system changes under ``root`` made by this process from now on: (call, path)."""
    seen, root = [], str(root)

    def spy(name, real, writes=lambda *a, **k: True):
        def call(path, *args, **kwargs):
            target = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
            if target and os.path.abspath(target).startswith(root) and writes(*args, **kwargs):
                seen.append((name, target))
            return real(path, *args, **kwargs)

        return call

    def writing_mode(mode="r", *args, **kwargs):
        return bool(set(mode) & set("wax+"))

    for name in ("mkdir", "unlink", "rmdir", "replace", "rename"):
        monkeypatch.setattr(os, name, spy(name, getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", spy("rmtree", shutil.rmtree))
    monkeypatch.setattr(io, "open", spy("open", io.open, writing_mode))
    return seen


@pytest.mark.parametrize("earlier", [False, True])
def test_rank_1_changes_nothing_before_rank_0_has_prepared_out(tiny_csm, tmp_path, monkeypatch, earlier):
    from voxlora.train import distributed, recipe
    from voxlora.train.config import TrainConfig

    manifest = make_manifest(tmp_path / "data", n=2)
    out = tmp_path / "runs" / "voice"
    if earlier:  # a finished run, which rank 0 moves aside meanwhile (--overwrite)
        out.mkdir(parents=True)
        (out / "voxlora-train.json").write_text("{}\n")

    def wait_for_rank_0(self, value, what=""):
        raise ReachedTheWait(what)

    monkeypatch.setattr(distributed.World, "from_main", wait_for_rank_0)
    config = TrainConfig(
        model=str(tiny_csm), manifest=str(manifest), out=str(out), max_steps=2, overwrite=True
    )
    rank_1 = distributed.World(rank=1, size=2, backend="gloo")
    changes = record_changes(monkeypatch, tmp_path / "runs")
    try:
        next(recipe.run(config, world=rank_1))
        stopped = None
    except Exception as e:  # without a wait, rank 1 runs on to its first collective (no process group here)
        stopped = e
    assert changes == []
    assert isinstance(stopped, ReachedTheWait) and "rank 0 to prepare the output folder" in str(stopped)
