"""Resuming lora-train: the newest complete checkpoint, and proof that this run trains as it did."""

import dataclasses
import json
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.train.config import TrainConfig


@dataclasses.dataclass
class Resume:
    path: Path  # the checkpoint folder
    meta: dict  # its trainer_state.json
    optimizer: dict  # the optimizer's state_dict
    rng: dict  # RNG states


def check_resumable(resume: Resume, config: TrainConfig) -> None:
    """A resumed run must train the same way as the run that wrote the checkpoint.

    Every difference is listed, LoRA options one by one: ``lora.rank 4 (checkpoint: 8)``.
    """
    from voxlora.train.config import RESUME_FIELDS

    theirs = {"backend": "torch", **resume.meta["config"]}  # checkpoints from before --backend: torch
    ours = config.to_dict()
    differ = []
    for name in RESUME_FIELDS:
        a, b = ours[name], theirs.get(name)
        if name == "model" and a != b and _same_folder(a, b):
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            differ += [
                f"{name}.{k} {a.get(k)!r} (checkpoint: {b.get(k)!r})"
                for k in sorted(a.keys() | b.keys())
                if _plain(a.get(k)) != _plain(b.get(k))
            ]
        elif a != b:
            differ.append(f"{name} {a!r} (checkpoint: {b!r})")
    if differ:
        raise VoxloraError(f"{resume.path}: this run differs from the checkpoint's: {'; '.join(differ)}")


def _plain(value):
    """JSON's view of a value (a tuple read back from JSON is a list)."""
    return json.loads(json.dumps(value))


def _same_folder(a, b) -> bool:
    return bool(a and b) and Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve()
