"""The adapter folder: read peft, voxlora and mlx-lm adapters into one `Adapter`; write peft's layout.

A voxlora adapter *is* a peft adapter, so ``PeftModel.from_pretrained`` loads it as it is::

    adapter_config.json         peft's LoraConfig (peft_type LORA, r, lora_alpha, target_modules, ...)
    adapter_model.safetensors   base_model.model.<module>.lora_A.weight  (r, in)
                                base_model.model.<module>.lora_B.weight  (out, r)
                                base_model.model.<module>.weight         trained directly (modules_to_save)
    voxlora.json                format_version, base model, base fingerprint, backend, the settings

voxlora's extras live in the sidecar voxlora.json, not in adapter_config.json: peft 0.21 loads a
config with an unknown key but warns that it came from "a higher version" of peft, on every load.

mlx-lm adapters and VoxCPM's own LoRA checkpoints are read too (`voxlora.adapter_foreign`). Pickled weights (``adapter_model.bin``, VoxCPM's
``lora_weights.ckpt``) are refused, never unpickled.
"""

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from voxlora import __version__, lora
from voxlora.adapter_foreign import MLX_WEIGHTS, VOXCPM_WEIGHTS, load_tensors, read_mlx, read_voxcpm
from voxlora.atomic import atomic_dir
from voxlora.errors import VoxloraError
from voxlora.jsonfile import read_json_object

log = logging.getLogger("voxlora")

FORMAT_VERSION = 1
CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
SIDECAR = "voxlora.json"
PREFIX = "base_model.model."  # peft's prefix on every key in adapter_model.safetensors

# peft features voxlora's merge and apply do not implement: refused when reading, never ignored.
_UNSUPPORTED = {
    "use_dora": (False, None),
    "bias": ("none", None),
    "fan_in_fan_out": (False, None),
    "rank_pattern": ({}, None),
    "alpha_pattern": ({}, None),
    "layers_to_transform": (None,),
    "layer_replication": (None,),
    "target_parameters": (None, []),
    "trainable_token_indices": (None,),
    "lora_bias": (False, None),
    "use_qalora": (False, None),
    "alora_invocation_tokens": (None,),
    "use_bdlora": (None, False),
    "arrow_config": (None,),
    "kasa_config": (None,),
    "monteclora_config": (None,),
    "velora_config": (None,),
}
# inits that also rewrite the base weights: such an adapter only fits the rewritten base
_BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq", "lora_ga")


@dataclass
class Adapter:
    """One LoRA adapter in memory, whatever file format it came from."""

    r: int
    alpha: float
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]]  # module path -> (A (r, in), B (out, r))
    trained: dict[str, torch.Tensor] = field(default_factory=dict)  # tensor name -> full tensor
    dropout: float = 0.0
    rslora: bool = False
    base_model: str | None = None  # what to load it on: a hub id or a folder
    meta: dict = field(default_factory=dict)  # voxlora.json: fingerprint, backend, created_with
    format: str = "voxlora"  # read from: voxlora | peft | mlx | voxcpm

    @property
    def scaling(self) -> float:
        return lora.scaling(self.r, self.alpha, self.rslora)

    @property
    def modules_to_save(self) -> list[str]:
        """Modules whose tensors are trained directly (peft's modules_to_save)."""
        return sorted({name.rpartition(".")[0] for name in self.trained} - set(self.lora))

    def num_params(self) -> int:
        return sum(A.numel() + B.numel() for A, B in self.lora.values()) + sum(
            t.numel() for t in self.trained.values()
        )

    def peft_config(self) -> dict:
        """adapter_config.json: a LoraConfig peft accepts as it is."""
        init = (self.meta.get("created_with", {}).get("settings") or {}).get("init", "kaiming")
        return {
            "peft_type": "LORA",
            "task_type": None,
            "base_model_name_or_path": self.base_model,
            "r": self.r,
            "lora_alpha": int(self.alpha) if float(self.alpha).is_integer() else self.alpha,
            "lora_dropout": self.dropout,
            "use_rslora": self.rslora,
            "target_modules": sorted(self.lora),
            "modules_to_save": self.modules_to_save or None,
            "init_lora_weights": "gaussian" if init == "gaussian" else True,
            "bias": "none",
            "fan_in_fan_out": False,
            "use_dora": False,
            "inference_mode": True,
            "revision": None,
        }

    def peft_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors under the keys peft's save_pretrained writes (adapter name stripped)."""
        out = {}
        for module, (A, B) in self.lora.items():
            out[f"{PREFIX}{module}.lora_A.weight"] = A
            out[f"{PREFIX}{module}.lora_B.weight"] = B
        for name, t in self.trained.items():
            module, _, leaf = name.rpartition(".")
            # a module that is also LoRA-wrapped keeps its own weight under base_layer, as in peft
            key = f"{module}.base_layer.{leaf}" if module in self.lora else name
            out[PREFIX + key] = t
        return out


def fresh_adapter(
    lora_shapes: dict[str, tuple[int, int]],
    trained: dict[str, torch.Tensor],
    settings,
    seed: int,
    base_model: str | None,
    fingerprint: str | None,
    backend: str,
    identity: tuple[str, str] | None = None,
) -> Adapter:
    """A new adapter with voxlora.json's meta; the one place both backends make one.

    ``lora_shapes`` is {module: (out, in)} in `targets.select`'s order: each pair comes from
    `lora.init_lora` with one torch generator seeded with ``seed`` (A random, B zero), so torch and
    MLX start from identical tensors. ``trained`` are the directly trained tensors' starting values.
    """
    gen = torch.Generator().manual_seed(seed)
    pairs = {
        module: lora.init_lora(in_features, out_features, settings.rank, settings.init, gen)
        for module, (out_features, in_features) in lora_shapes.items()
    }
    meta = {
        "base_model": base_model,
        "base_fingerprint": fingerprint,
        **({"base_layout": identity[0], "base_model_fingerprint": identity[1]} if identity else {}),
        "backend": backend,
        "created_with": {"voxlora": __version__, "settings": settings.to_dict(), "seed": seed},
    }
    return Adapter(
        r=settings.rank,
        alpha=settings.alpha,
        lora=pairs,
        trained=trained,
        dropout=settings.dropout,
        rslora=settings.rslora,
        base_model=base_model,
        meta=meta,
    )


def read_adapter(path) -> Adapter:
    """Read a voxlora, peft, mlx-lm or VoxCPM adapter folder (or its weights file) into an `Adapter`."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise VoxloraError(f"{path}: no such adapter folder")
    if (folder / WEIGHTS).is_file():
        return _read_peft(folder)
    if (folder / MLX_WEIGHTS).is_file():
        return Adapter(**read_mlx(folder))
    if (folder / VOXCPM_WEIGHTS).is_file():
        return Adapter(**read_voxcpm(folder))
    pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    if pickles:
        raise VoxloraError(
            f"{folder / pickles[0]}: pickle weights are not read (they can run code); "
            "save the adapter as safetensors"
        )
    raise VoxloraError(f"{folder}: not an adapter folder (no {WEIGHTS} or {MLX_WEIGHTS})")


def _peft_config_fields() -> set[str]:
    """Every key a LoraConfig of the installed peft knows (plus the bookkeeping keys peft writes)."""
    from peft import LoraConfig

    return {f.name for f in dataclasses.fields(LoraConfig)} | {"peft_version", "auto_mapping"}


# Keys every adapter_config.json holds (peft's and voxlora's own): a config of only these is read
# without importing peft (seconds: it imports transformers), which is asked only about other keys.
_COMMON_PEFT_KEYS = frozenset({
    "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode", "init_lora_weights",
    "lora_alpha", "lora_dropout", "modules_to_save", "peft_type", "r", "revision", "target_modules",
    "task_type", "use_dora", "use_rslora", "layers_to_transform", "layers_pattern", "rank_pattern",
    "alpha_pattern", "peft_version", "auto_mapping",
})  # fmt: skip


def _read_peft(folder: Path) -> Adapter:
    config = read_json_object(folder / CONFIG)
    where = folder / CONFIG
    if config.get("peft_type") != "LORA":
        raise VoxloraError(f"{where}: peft_type is {config.get('peft_type')!r}; only LORA adapters are read")
    for key, accepted in _UNSUPPORTED.items():
        if key in config and config[key] not in accepted:
            raise VoxloraError(f"{where}: {key}={config[key]!r} is not supported by voxlora")
    missing = [key for key in ("r", "lora_alpha", "target_modules") if key not in config]
    if missing:  # peft would fill in its defaults; a guessed scaling is a silently wrong adapter
        raise VoxloraError(f"{where}: missing {', '.join(missing)}")
    unknown = set(config) - _COMMON_PEFT_KEYS
    unknown = sorted(unknown - _peft_config_fields()) if unknown else []
    if unknown:
        log.warning(f"{where}: ignoring fields this peft does not know: {', '.join(unknown)}")
    init = config.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(_BASE_CHANGING_INITS):
        raise VoxloraError(
            f"{where}: init_lora_weights={init!r} also changes the base weights; not supported"
        )
    pairs, trained = parse_peft_tensors(load_tensors(folder / WEIGHTS), folder / WEIGHTS)
    r = int(config["r"])
    bad = sorted(m for m, (A, _) in pairs.items() if A.shape[0] != r)
    if bad:
        raise VoxloraError(f"{where}: r is {r} but these modules have another rank: {', '.join(bad)}")
    meta, fmt = {}, "peft"
    if (folder / SIDECAR).is_file():
        meta, fmt = read_json_object(folder / SIDECAR), "voxlora"
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise VoxloraError(
                f"{folder / SIDECAR}: format_version {meta['format_version']} is newer than this voxlora "
                f"reads ({FORMAT_VERSION}); upgrade voxlora"
            )
    return Adapter(
        r=r,
        alpha=float(config["lora_alpha"]),
        lora=pairs,
        trained=trained,
        dropout=float(config.get("lora_dropout") or 0.0),
        rslora=bool(config.get("use_rslora", False)),
        base_model=config.get("base_model_name_or_path"),
        meta=meta,
        format=fmt,
    )


def parse_peft_tensors(tensors: dict, where) -> tuple[dict, dict]:
    """peft's keys -> ({module: (A, B)}, {tensor name: trained tensor}); VoxloraError for the rest."""
    pairs, trained, unknown = {}, {}, []
    for key, t in tensors.items():
        name = key.removeprefix(PREFIX)
        for part, slot in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if name.endswith(part):
                pairs.setdefault(name.removesuffix(part), [None, None])[slot] = t
                break
        else:
            if "lora_" in name or not key.startswith(PREFIX):
                unknown.append(key)  # lora_embedding_A, lora_magnitude_vector (DoRA), foreign keys
            else:
                trained[name.replace(".base_layer.", ".")] = t
    if unknown:
        raise VoxloraError(f"{where}: tensors voxlora cannot use: {', '.join(sorted(unknown))}")
    half = sorted(m for m, (A, B) in pairs.items() if A is None or B is None)
    if half:
        raise VoxloraError(f"{where}: modules with only one of lora_A/lora_B: {', '.join(half)}")
    return {m: (A, B) for m, (A, B) in pairs.items()}, trained


def write_adapter(adapter: Adapter, path) -> Path:
    """Write ``adapter`` as a peft/voxlora folder at ``path``, atomically (complete or absent)."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"format_version": FORMAT_VERSION, "base_model": adapter.base_model, **adapter.meta}
    meta["format_version"] = FORMAT_VERSION
    with atomic_dir(path) as tmp:
        tensors = {k: t.detach().contiguous() for k, t in adapter.peft_state_dict().items()}
        save_file(tensors, tmp / WEIGHTS, metadata={"format": "pt"})
        (tmp / CONFIG).write_text(json.dumps(adapter.peft_config(), indent=2, sort_keys=True) + "\n")
        (tmp / SIDECAR).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def with_base_names(adapter: Adapter, base_shapes: dict, family) -> Adapter:
    """``adapter`` with module paths renamed to the layout of a base with these tensor names.

    A family may have two layouts of the same modules (Higgs: transformers' ``model.layers.3...``
    and the original ``layers.3...``); an adapter trained on one is renamed to fit the other.
    Paths already in the base, and paths with no counterpart, stay as they are.
    """
    rename = {m: family.base_name(m, base_shapes) for m in adapter.lora}
    rename.update(
        {
            n: family.base_name(n.removesuffix(".weight"), base_shapes) + ".weight"
            for n in adapter.trained
            if n.endswith(".weight")
        }
    )
    if all(k == v for k, v in rename.items()):
        return adapter
    return dataclasses.replace(
        adapter,
        lora={rename[m]: ab for m, ab in adapter.lora.items()},
        trained={rename.get(n, n): t for n, t in adapter.trained.items()},
    )


def check_against_base(adapter: Adapter, base_shapes: dict) -> list[str]:
    """Every adapter key that would be skipped or mismatched on a base with these tensor shapes.

    One message per problem, all of them (as mlx-lm's load_adapters), e.g.
    ``backbone_model.layers.0.self_attn.q_proj: LoRA (64, 32) vs base (64, 64)``. Empty means
    every tensor lands on a base tensor of the right shape.
    """
    problems = []
    for module, (A, B) in adapter.lora.items():
        name = f"{module}.weight"
        if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
            problems.append(
                f"{module}: lora_A {tuple(A.shape)} and lora_B {tuple(B.shape)} do not share a rank"
            )
        elif name not in base_shapes:
            problems.append(f"{module}: no such module in the base (would be skipped)")
        elif tuple(base_shapes[name]) != (B.shape[0], A.shape[1]):
            problems.append(
                f"{module}: LoRA {(B.shape[0], A.shape[1])} vs base {tuple(base_shapes[name])} (out, in)"
            )
    for name, t in adapter.trained.items():
        if name not in base_shapes:
            problems.append(f"{name}: no such tensor in the base (would be skipped)")
        elif tuple(base_shapes[name]) != tuple(t.shape):
            problems.append(f"{name}: trained {tuple(t.shape)} vs base {tuple(base_shapes[name])}")
    return problems


def require_fits(adapter: Adapter, base_shapes: dict, where: str) -> None:
    """Raise one VoxloraError listing every key of ``adapter`` that does not fit the base."""
    problems = check_against_base(adapter, base_shapes)
    if problems:
        raise VoxloraError(
            f"{where}: {len(problems)} adapter keys do not fit the base: " + "; ".join(problems)
        )


def fingerprint(shapes: dict) -> str:
    """A short hash of a checkpoint's tensor names and shapes (headers only, no weights read).

    Two checkpoints of the same architecture share it; it tells "made for another model" apart.
    """
    lines = "\n".join(f"{n}:{','.join(map(str, s))}" for n, s in sorted(shapes.items()))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()[:16]


def base_fingerprint(model) -> str:
    """`fingerprint` of a model folder or hub id, from its safetensors headers (or tensor pickle);
    a csm-1b-mlx folder's under transformers' names (`voxlora.families.files.tensor_shapes`)."""
    from voxlora.families.files import tensor_shapes

    return fingerprint(tensor_shapes(model))


def model_fingerprint(model) -> str:
    """`fingerprint` of the model alone, its codec's tensors left out: the same for sesame/csm-1b and
    its csm-1b-mlx copy (which has no codec), so an adapter made on one is known to fit the other."""
    from voxlora import families
    from voxlora.families.files import tensor_shapes
    from voxlora.modelfolder import model_dir

    kind = families.resolve(model_dir(model))
    return fingerprint({n: s for n, s in tensor_shapes(model).items() if not kind.is_codec(n)})


def base_identity(model) -> tuple[str, str]:
    """(the folder's layout, `model_fingerprint`): what an adapter made on another layout is checked by."""
    from voxlora.families.files import layout

    return layout(model), model_fingerprint(model)
