"""Adapters other trainers save, read into `voxlora.adapter.Adapter`'s fields (never unpickled).

mlx-lm: ``adapters.safetensors`` with ``<module>.lora_a`` (in, r) / ``lora_b`` (r, out), and
``lora_parameters`` {rank, scale, dropout} in adapter_config.json, converted through
`lora.from_mlx`. VoxCPM: ``lora_weights.safetensors`` with ``<module>.lora_A`` (r, in) /
``<module>.lora_B`` (out, r), no ``.weight`` suffix (as its LoRALinear names its parameters), beside
``lora_config.json`` ``{"base_model", "lora_config": {"r", "alpha", "dropout", "enable_lm", ...}}``:
the same A and B as peft's, scaling alpha / r.
"""

from pathlib import Path

import torch

from voxlora import lora
from voxlora.errors import VoxloraError
from voxlora.jsonfile import read_json_object

MLX_CONFIG = "adapter_config.json"  # mlx-lm's (the same name as peft's)
MLX_WEIGHTS = "adapters.safetensors"
VOXCPM_WEIGHTS = "lora_weights.safetensors"  # VoxCPM's own LoRA checkpoint
VOXCPM_CONFIG = "lora_config.json"


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except Exception as e:  # truncated, not safetensors, ...
        raise VoxloraError(f"{path}: not a readable safetensors file ({e})") from None


def pair_tensors(tensors: dict, leaves: tuple[str, str]) -> tuple[dict, list]:
    """``{"<module>.<leaf>": t}`` -> ({module: {leaf: t}}, names of the tensors with another leaf).

    >>> pair_tensors({"m.lora_a": 1, "m.lora_b": 2, "x": 3}, ("lora_a", "lora_b"))
    ({'m': {'lora_a': 1, 'lora_b': 2}}, ['x'])
    """
    pairs, unknown = {}, []
    for key, t in tensors.items():
        module, _, leaf = key.rpartition(".")
        if leaf in leaves:
            pairs.setdefault(module, {})[leaf] = t
        else:
            unknown.append(key)
    return pairs, unknown


def read_mlx(folder: Path) -> dict:
    """mlx-lm's adapters.safetensors + adapter_config.json -> `Adapter` fields (A, B in peft's layout)."""
    config = read_json_object(folder / MLX_CONFIG)
    where = folder / MLX_CONFIG
    kind = config.get("fine_tune_type", "lora")
    if kind != "lora":
        raise VoxloraError(f"{where}: mlx-lm fine_tune_type {kind!r}; only lora adapters are read")
    params = config.get("lora_parameters") or {}
    if "rank" not in params or "scale" not in params:
        raise VoxloraError(f"{where}: lora_parameters needs rank and scale (an mlx-lm adapter config)")
    pairs, unknown = pair_tensors(load_tensors(folder / MLX_WEIGHTS), ("lora_a", "lora_b"))
    if unknown:
        raise VoxloraError(
            f"{folder / MLX_WEIGHTS}: tensors voxlora cannot use: {', '.join(sorted(unknown))}"
        )
    r, scale = int(params["rank"]), float(params["scale"])
    out = {}
    for module, ab in pairs.items():
        if set(ab) != {"lora_a", "lora_b"}:
            raise VoxloraError(f"{folder / MLX_WEIGHTS}: {module} has only {', '.join(ab)}")
        A, B, _ = lora.from_mlx(ab["lora_a"], ab["lora_b"], scale)
        out[module] = (A, B)
    return dict(
        r=r,
        alpha=scale * r,  # mlx-lm's scale is the scaling itself: alpha / r == scale
        lora=out,
        dropout=float(params.get("dropout", 0.0)),
        base_model=config.get("model"),
        format="mlx",
    )


def read_voxcpm(folder: Path) -> dict:
    """VoxCPM's lora_weights.safetensors + lora_config.json (what its fine-tuning script saves) -> `Adapter` fields."""
    where = folder / VOXCPM_CONFIG
    info = read_json_object(where)
    config = info.get("lora_config", info)  # {"base_model", "lora_config": {...}}, or the fields alone
    if not isinstance(config, dict) or "alpha" not in config:
        raise VoxloraError(f"{where}: no lora_config with r and alpha (VoxCPM's LoRA config)")
    weights = folder / VOXCPM_WEIGHTS
    pairs, unknown = pair_tensors(load_tensors(weights), ("lora_A", "lora_B"))
    if unknown:
        raise VoxloraError(f"{weights}: tensors voxlora cannot use: {', '.join(sorted(unknown))}")
    if not pairs:
        raise VoxloraError(f"{weights}: no lora_A/lora_B tensors")
    half = sorted(m for m, ab in pairs.items() if len(ab) != 2)
    if half:
        raise VoxloraError(f"{weights}: modules with only one of lora_A/lora_B: {', '.join(half)}")
    r = int(config.get("r") or next(iter(pairs.values()))["lora_A"].shape[0])
    bad = sorted(m for m, ab in pairs.items() if ab["lora_A"].shape[0] != r)
    if bad:
        raise VoxloraError(f"{where}: r is {r} but these modules have another rank: {', '.join(bad)}")
    return dict(
        r=r,
        alpha=float(config["alpha"]),
        lora={m: (ab["lora_A"], ab["lora_B"]) for m, ab in pairs.items()},
        dropout=float(config.get("dropout") or 0.0),
        base_model=info.get("base_model") or None,
        meta={"family": "voxcpm"},
        format="voxcpm",
    )
