"""Model families: one package per TTS model (``csm``, ``higgs_audio_v2``, ``voxcpm``).

    layout.py      `Family`: a checkpoint's layout as data (what the file tools read)
    base.py        the interface a family's model code fills to train and speak (TrainModel, SpeakModel)
    registry.py    family name -> that model code (`for_model(folder)`)
    <family>/      ``__init__.py``: its `Family`; the model code, for the families that have it

Model families as data: what a checkpoint of each TTS model looks like to voxlora's file tools.

A `Family` says, for one model (Sesame CSM, Higgs Audio v2, VoxCPM), where its transformer layers
are in the tensor names, which linears each layer has, the presets ``--targets`` accepts, the
single modules outside the layers that can be targeted by name ("heads"), and the codec or audio
tokenizer that is never targeted. `targets`, `merge` and `adapter_report` read these fields and
never branch on the model, so a new family is one small module here, not a fork of the code.

Which family a folder holds comes from its config.json (`detect`): ``model_type`` (CSM, Higgs),
else ``architecture`` (VoxCPM writes ``"architecture": "voxcpm"`` and no model_type); ``--family``
overrides it. A csm-1b-mlx folder (``ckpt.safetensors``, no config) is CSM. An adapter without a
recorded family is recognised by its module names (`guess`).

    >>> detect({"model_type": "higgs_audio_v2"}).name
    'higgs-audio-v2'
"""

from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.families.layout import Family
from voxlora.jsonfile import read_json_object

__all__ = ["CSM", "FAMILIES", "NAMES", "Family", "detect", "get", "guess", "read_config", "resolve"]


def _registry() -> dict[str, Family]:
    from voxlora.families import csm, higgs_audio_v2, voxcpm

    return {f.name: f for f in (csm.FAMILY, higgs_audio_v2.FAMILY, voxcpm.FAMILY)}


FAMILIES = _registry()
NAMES = tuple(FAMILIES)
CSM = FAMILIES["csm"]


def get(name: str) -> Family:
    """The family called ``name`` (a --family value or one of its model types)."""
    if name in FAMILIES:
        return FAMILIES[name]
    for family in FAMILIES.values():
        if name in family.model_types:
            return family
    raise VoxloraError(f"unknown model family {name!r} (known: {', '.join(NAMES)})")


def detect(config: dict, where: str = "config.json") -> Family:
    """The family of a checkpoint from its config.json contents; VoxloraError when none fits."""
    kind = config.get("model_type") or config.get("architecture")
    for family in FAMILIES.values():
        if kind in family.model_types:
            return family
    raise VoxloraError(
        f"{where}: model_type {kind!r} is not a family voxlora knows ({', '.join(NAMES)}); "
        "pass --family if the checkpoint is laid out like one of them"
    )


def resolve(folder, name: str | None = None) -> Family:
    """``--family name`` when given, else the family ``folder``'s config.json declares."""
    from voxlora.modelfolder import is_mlx_ckpt

    if name:
        return get(name)
    if is_mlx_ckpt(folder) and not (Path(folder) / "config.json").is_file():
        return CSM  # csm-1b-mlx: ckpt.safetensors alone (`voxlora.families.csm.mlx_layout`)
    return detect(read_config(folder), str(Path(folder) / "config.json"))


def read_config(folder) -> dict:
    """config.json of a model folder as a dict (any family)."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise VoxloraError(f"{folder}: not a model folder (no config.json)")
    return read_json_object(path)


def guess(modules) -> Family:
    """The family whose layout names most of ``modules`` (module paths or tensor names); CSM on a tie.

    For adapters that do not record their family (peft's, VoxCPM's own).
    """
    modules = [m.removesuffix(".weight") for m in modules]
    scores = {
        name: sum(f.layer_of(m) is not None or f.head_of(m) is not None for m in modules)
        for name, f in FAMILIES.items()
    }
    best = max(scores.values(), default=0)
    return next(FAMILIES[n] for n, s in scores.items() if s == best)
