"""Is this adapter made for this base? One check for every command that applies an adapter.

`synth`, `lora-merge` and `lora-train --adapter` (and `lora-eval`) call `check_base` before they
apply anything. An adapter's ``voxlora.json`` records the fingerprint of the base it was made on
(`voxlora.adapter.fingerprint`: the base's tensor names and shapes); a different one means another
model, even when every adapter key happens to fit. Such an adapter is refused in one line, or with
``--allow-other-base`` applied after a warning naming both fingerprints. Adapters without a recorded
fingerprint (peft, mlx-lm, VoxCPM's own) are checked by their keys and shapes alone.
"""

import json
import logging
from pathlib import Path

import click

from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora")

allow_other_base_option = click.option(
    "--allow-other-base",
    is_flag=True,
    help="Apply an adapter whose recorded base fingerprint differs from the model's (with a warning).",
)


def recorded_fingerprint(adapter, key: str = "base_fingerprint") -> str | None:
    """The base fingerprint an adapter records: from an `Adapter`, or its folder's voxlora.json."""
    meta = getattr(adapter, "meta", None)
    if meta is None:
        path = Path(adapter)
        sidecar = (path.parent if path.is_file() else path) / "voxlora.json"
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return meta.get(key) if isinstance(meta, dict) else None


def other_layout_same_model(adapter, identity) -> bool:
    """Whether ``adapter`` was made on this model in another layout (sesame/csm-1b vs csm-1b-mlx):
    its recorded ``base_layout`` differs from ours and its ``base_model_fingerprint`` (codec left out)
    is ours. ``identity``: (layout, model fingerprint) of the base, or a function returning it."""
    their_layout = recorded_fingerprint(adapter, "base_layout")
    their_model = recorded_fingerprint(adapter, "base_model_fingerprint")
    if not (their_layout and their_model):
        return False
    layout, ours = identity() if callable(identity) else identity
    return their_layout != layout and their_model == ours


def check_base(adapter, where, model, base_fingerprint, allow: bool = False, identity=None) -> None:
    """Refuse (or, with ``allow``, warn about) ``adapter`` when it was made for another base.

    ``adapter``: an `Adapter` or an adapter folder; ``where``: how to name it in the message;
    ``model``: how to name the base; ``base_fingerprint``: `voxlora.adapter.base_fingerprint(folder)`,
    or a function returning it (called only when the adapter records a fingerprint);
    ``identity``: `voxlora.adapter.base_identity(folder)` (or a function returning it), for an
    adapter made on the same model in another layout (`other_layout_same_model`).
    """
    theirs = recorded_fingerprint(adapter)
    if not theirs:
        return
    if callable(base_fingerprint):  # computed only for an adapter that records one
        base_fingerprint = base_fingerprint()
    if theirs == base_fingerprint:
        return
    if identity is not None and other_layout_same_model(adapter, identity):
        return
    said = f"{where}: made for another model (base fingerprint {theirs}, {model} has {base_fingerprint})"
    if not allow:
        raise VoxloraError(f"{said}; add --allow-other-base to apply it anyway")
    log.warning("%s; applied anyway (--allow-other-base)", said)
