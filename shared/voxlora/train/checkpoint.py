"""Checkpoints: everything needed to continue a run exactly, in safetensors and JSON, never pickle.

``OUT/step_NNNNNNN/`` (written whole or not at all, with `atomic_dir`)::

    adapter_config.json, adapter_model.safetensors, voxlora.json   the adapter (PeftModel loads it)
      or config.json, model.safetensors, tokenizer ...             the whole model, with --full
    merged/                                                        --save-mode full|both: merged model
    trainer_state.json          format_version, step, epoch, position, the resolved config, the names
                                of the trained tensors in optimizer order, optimizer param_groups,
                                a fingerprint of the training data (``data``)
    trainer_state.safetensors   optimizer state (``optimizer.<i>.<name>``), RNG states (``rng.*``)

A kill while one is being written leaves only a hidden ``.step_NNNNNNN.*.tmp`` folder, which
`clean_partial` removes with every other temporary name a kill can leave in ``OUT`` (the merged
model's, the adapter files', the metrics'; see `voxlora.atomic`); `newest_complete` is what
``--resume`` continues from.

The data order is a function of (seed, epoch) and the decoder's frames of (seed, epoch, clip), so
(epoch, position) is all the data state there is; dropout's randomness is torch's global
generator, saved here.
"""

import contextlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch

from voxlora.atomic import atomic_dir, recover
from voxlora.backends.torch.rng import rng_tensors
from voxlora.errors import VoxloraError

FORMAT_VERSION = 1
STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
STEP_DIR = re.compile(r"^step_(\d{7,})$")
STAGING = re.compile(r"^\.(weights|write-test|pruned)-\d+$")  # lora-train's own scratch names in OUT
OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "sgd": 0}  # fp32 tensors per trained tensor (Adam: m and v)
log = logging.getLogger("voxlora")


def step_dir(out, step: int) -> Path:
    return Path(out) / f"step_{step:07d}"


def optimizer_to_safetensors(opt_state: dict) -> tuple[dict, dict]:
    """torch optimizer ``state_dict()`` -> (tensors for safetensors, JSON-ready rest)."""
    tensors, scalars = {}, {}
    for index, entries in opt_state["state"].items():
        for name, value in entries.items():
            key = f"optimizer.{index}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value.detach().to("cpu").contiguous()
            else:
                scalars[key] = value  # numbers, None (e.g. SGD without momentum)
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def optimizer_from_safetensors(tensors: dict, rest: dict) -> dict:
    state: dict = {}
    for key, value in [*tensors.items(), *rest["scalars"].items()]:
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in rest["param_groups"]]
    return {"state": state, "param_groups": groups}


def write_checkpoint(
    path,
    *,
    state,
    optimizer,
    scaler,
    config: dict,
    names: list[str],
    write_weights,
    data: str | None = None,
    rng: dict | None = None,
) -> Path:
    """Write one checkpoint folder atomically; ``write_weights(folder)`` writes the trained weights.

    ``optimizer`` is anything with torch's ``state_dict()`` shape (the MLX backend's `OptimizerState`
    too); ``rng`` the backend's generator states (default: torch's, `rng_tensors`).
    """
    from safetensors.torch import save_file

    opt_tensors, opt_rest = optimizer_to_safetensors(optimizer.state_dict())
    meta = {
        "format_version": FORMAT_VERSION,
        "step": state.step,
        "epoch": state.epoch,
        "position": state.position,
        "trained": names,
        "optimizer": opt_rest,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "config": config,
        "data": data,
    }
    with atomic_dir(path) as tmp:
        write_weights(tmp)
        rng = rng_tensors() if rng is None else rng
        save_file({**opt_tensors, **rng}, tmp / STATE_TENSORS, metadata={"format": "pt"})
        (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1) + "\n")
    return Path(path)


def read_checkpoint(path) -> tuple[dict, dict, dict]:
    """(trainer_state.json as a dict, optimizer state_dict, RNG tensors) of a checkpoint folder."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        meta = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))
        tensors = load_file(path / STATE_TENSORS)
    except FileNotFoundError:
        raise VoxloraError(f"{path}: not a lora-train checkpoint (no {STATE_JSON})") from None
    except Exception as e:
        raise VoxloraError(f"{path}: damaged checkpoint ({e})") from None
    if int(meta.get("format_version", 0)) != FORMAT_VERSION:
        raise VoxloraError(
            f"{path}: checkpoint format {meta.get('format_version')}, this voxlora reads {FORMAT_VERSION}"
        )
    optimizer = optimizer_from_safetensors(tensors, meta["optimizer"])
    rng = {k: v for k, v in tensors.items() if k.startswith("rng.")}
    return meta, optimizer, rng


def checkpoints(out) -> list[Path]:
    """The step folders in ``out``, oldest first."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = [(int(m[1]), p) for p in out.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def prune(out, keep_last: int | None) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; returns what was deleted."""
    if keep_last is None:
        return []
    old = checkpoints(out)[:-keep_last]
    for p in old:  # renamed first (atomic): a kill mid-delete leaves a hidden name, never a half step folder
        doomed = p.with_name(f".pruned-{p.name.removeprefix('step_')}")
        os.replace(p, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return old


def newest_complete(out):
    """(path, trainer_state.json, optimizer state_dict, RNG tensors) of the newest readable checkpoint.

    A damaged one (a disk fault; a kill cannot make one) is skipped with a warning. None: none at all.
    """
    for path in reversed(checkpoints(out)):
        try:
            return (path, *read_checkpoint(path))
        except VoxloraError as e:
            log.warning("skipping %s", e)
    return None


def clean_partial(out) -> list[Path]:
    """Tidy up after a killed run in ``out``; returns the hidden temporary files and folders removed.

    Every temporary name `atomic_file` / `atomic_dir` create (step folders, ``merged/``, adapter
    files, metrics) goes, and a folder moved aside mid-replacement is restored (`atomic.recover`);
    then lora-train's staging folder ``.weights-PID`` and write probe ``.write-test-PID``.
    """
    out = Path(out)
    if not out.is_dir():
        return []
    removed = recover(out)
    for p in sorted(p for p in out.iterdir() if STAGING.match(p.name)):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
    return sorted(removed)


@contextlib.contextmanager
def write_failure(out, dest, what: str):
    """A failed write (a full disk, a quota) as one line; what it left half-written is removed.

    ``Error: runs/a/step_0000003: cannot write the checkpoint (No space left on device); the newest
    complete checkpoint, runs/a/step_0000002, is intact: free some space and run the same command
    with --resume``. Checkpoints are written under a temporary name (`atomic_dir`), so the previous
    one is never touched; the temporary names are tidied here, at once, not by the next run.
    """
    try:
        yield
    except OSError as e:
        clean_partial(out)
        done = checkpoints(out)
        keep = (
            f"the newest complete checkpoint, {done[-1]}, is intact: free some space and run the same "
            "command with --resume"
            if done
            else "no checkpoint was saved"
        )
        raise VoxloraError(f"{dest}: cannot write {what} ({e.strerror or e}); {keep}") from None


def estimate_bytes(trained_params: int, optimizer: str, extra: int = 0) -> int:
    """About how many bytes one checkpoint takes: fp32 weights, the optimizer's state, ``extra``.

    >>> estimate_bytes(1000, "adamw")
    12000
    """
    return trained_params * 4 * (1 + OPTIMIZER_STATES.get(optimizer, 2)) + extra
