"""lora-train's output folder: may this run write there, and what happens to an earlier run in it.

`claim` applies `voxlora.outputs`' rule for ``TRAIN_RUN`` before any long work: OUT is never the
base model's folder, the ``--adapter`` folder, or inside either; it holds nothing lora-train did not
write; an earlier run in it (a finished one, or checkpoints) is continued with ``--resume`` or
replaced with ``--overwrite``, else refused. Replacing deletes nothing up front: the earlier run's
files move into ``OUT/.previous-run-PID/`` (one rename each) and `release` removes that folder only
once the new result is written. A kill in between leaves them there, whole.
"""

import logging
import os
import shutil
from pathlib import Path

from voxlora import outputs

log = logging.getLogger("voxlora")


def check(out: Path, config) -> None:
    """Refuse OUT for this run in one line (`voxlora.outputs.check_dir`); changes nothing."""
    inputs = [("the --adapter folder", config.adapter)] if config.adapter else []
    if Path(config.model).exists():
        inputs.append(("the base model's folder", config.model))
    outputs.check_dir(out, outputs.TRAIN_RUN, inputs, overwrite=config.overwrite, resume=config.resume)


def claim(out: Path, config) -> Path | None:
    """`check` OUT; with --overwrite move an earlier run aside.

    Returns the folder the earlier run was moved into (for `release`), or None.
    """
    check(out, config)
    if not (config.overwrite and not config.resume and out.is_dir()):
        return None
    earlier = [p for p in sorted(out.iterdir()) if not p.name.startswith(".")]
    if not earlier:
        return None
    aside = out / f".previous-run-{os.getpid()}"
    aside.mkdir(exist_ok=True)
    for p in earlier:
        os.replace(p, aside / p.name)
    log.info("%s: the earlier run moved into %s until this one is written (--overwrite)", out, aside.name)
    return aside


def release(aside: Path | None) -> None:
    """Remove the earlier run `claim` moved aside, now that the new result is complete."""
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
