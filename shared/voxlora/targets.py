"""Which modules a LoRA adapter wraps, picked by name from the checkpoint's tensor names.

What the names mean is the model family's business (`voxlora.families`: CSM, Higgs Audio v2,
VoxCPM): where the layer stacks are, which linears a layer has, the presets and heads. This module
applies a family to ``{tensor name: shape}`` (the safetensors headers, see `base_shapes`), never to a
loaded model, so a dry run over a 3B checkpoint is instant, and it returns exact module paths, so
peft is given an unambiguous list rather than a suffix like ``q_proj`` that would also hit a codec.

A ``--targets`` item is a preset (``attn``, ``all-linear``, a family's own such as Higgs'
``audio-ffn``), a layer linear (``q_proj``, or ``mlp.gate_proj`` where the leaf is shared), a block
(Higgs ``audio_mlp``: its three linears) or a head (``lm_head``, VoxCPM ``enc_to_lm_proj``).
"""

import math
import re
from dataclasses import dataclass, field

from voxlora import families
from voxlora.errors import UsageError, VoxloraError
from voxlora.families import Family

# --component values of every family (each family checks its own in `select`)
COMPONENT_CHOICES = (*dict.fromkeys(c for f in families.FAMILIES.values() for c in f.components), "all")
# tensors stored once under another name, in any family (CSM's tied audio embedding)
TIED = {alias: stored for f in families.FAMILIES.values() for alias, stored in f.tied.items()}

_EMBEDDING_WORDS = ("embed", "embed_tokens", "embed_text_tokens", "embed_audio_tokens")


@dataclass
class Selection:
    """The result of `select`: exact module paths with their weight shapes."""

    lora: dict[str, tuple[int, int]]  # module path -> (out, in), in model order
    trained: dict[str, tuple[int, ...]] = field(default_factory=dict)  # tensor name -> shape

    def lora_params(self, r: int) -> int:
        """A (r, in) + B (out, r) per module."""
        return sum(r * (o + i) for o, i in self.lora.values())

    def trained_params(self) -> int:
        return sum(math.prod(s) for s in self.trained.values())


def _items(spec) -> list[str]:
    items = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec) if t.strip()]
    if not items:
        raise ValueError("no targets given")
    return items


def _expand(item: str, family: Family, names: list, heads: list) -> bool:
    """Add what ``item`` names in ``family`` to ``names``/``heads``; False when it names nothing."""
    if item in family.presets:
        for sub in family.presets[item]:
            _expand(sub, family, names, heads)
        return True
    head = family.head_aliases.get(item, item)
    if head in family.heads:
        heads.append(head)
        return True
    linears = family.matching_linears(item)
    names += linears
    return bool(linears)


def expand_targets(spec, family: Family = families.CSM) -> tuple[list[str], list[str]]:
    """``"attn,lm_head"`` -> (layer linear names, head names); ValueError for unknown names.

    >>> expand_targets("attn,codebook0_head")
    (['q_proj', 'k_proj', 'v_proj', 'o_proj'], ['lm_head'])
    >>> expand_targets("audio-ffn", families.get("higgs-audio-v2"))[0]
    ['audio_mlp.gate_proj', 'audio_mlp.up_proj', 'audio_mlp.down_proj']
    """
    names, heads = [], []
    for item in _items(spec):
        if not _expand(item, family, names, heads):
            raise ValueError(_unknown(item, family.target_names(), f" for {family.name}"))
    return list(dict.fromkeys(names)), list(dict.fromkeys(heads))


def check_targets(spec) -> None:
    """ValueError for an item no family knows (the parse-time check, before the family is known)."""
    for item in _items(spec):
        if not any(_expand(item, f, [], []) for f in families.FAMILIES.values()):
            known = dict.fromkeys(n for f in families.FAMILIES.values() for n in f.target_names())
            raise ValueError(_unknown(item, known, ""))


def _unknown(item: str, known, where: str) -> str:
    if any(w in item for w in _EMBEDDING_WORDS):
        return f"{item}: embeddings are not LoRA targets; use --train-embeddings to train them directly"
    return f"unknown target {item!r}{where} (known: {', '.join(known)})"


def parse_layers(spec: str) -> set[int]:
    """``"0-3,8"`` -> {0, 1, 2, 3, 8}; ValueError for anything else.

    >>> sorted(parse_layers("0-3,8"))
    [0, 1, 2, 3, 8]
    """
    layers = set()
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"bad layer list {spec!r} (use e.g. 8-15 or 0-3,8)")
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if hi < lo:
            raise ValueError(f"bad layer range {part.strip()!r} (high end first)")
        layers.update(range(lo, hi + 1))
    return layers


def format_layers(layers) -> str:
    """The inverse of `parse_layers`: {0, 1, 2, 3, 8} -> ``"0-3,8"``."""
    out, run = [], []
    for i in sorted(set(layers)):
        if run and i != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(i)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def base_shapes(model) -> dict[str, tuple[int, ...]]:
    """Every tensor a model folder has, name -> shape, from the safetensors headers (nothing loaded).

    Tied tensors stored once (see `TIED`) are listed under both names, as the loaded model has them.
    """
    from voxlora.families.files import tensor_shapes

    return with_tied(tensor_shapes(model))


def with_tied(shapes: dict) -> dict:
    """``shapes`` plus the tied names a checkpoint stores only once."""
    shapes = dict(shapes)
    for alias, stored in TIED.items():
        if alias not in shapes and stored in shapes:
            shapes[alias] = shapes[stored]
    return shapes


def family_for(shapes: dict, settings=None) -> Family:
    """``settings.family`` when set, else the family the tensor names look like."""
    name = getattr(settings, "family", None)
    return families.get(name) if name else families.guess(shapes)


def _first_present(paths, shapes) -> str | None:
    return next((p for p in paths if f"{p}.weight" in shapes), None)


def select(shapes: dict, settings, family: Family | None = None) -> Selection:
    """The modules ``settings`` (a LoraSettings) picks in a model with these tensor shapes.

    ``family`` defaults to `family_for` (``settings.family``, else recognised from the names).
    Raises VoxloraError when the choice matches nothing, names a layer no selected stack has, or
    names a head outside the selected component.
    """
    family = family or family_for(shapes, settings)
    try:
        names, heads = expand_targets(settings.targets, family)
        layers = parse_layers(settings.layers) if settings.layers else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if settings.component != "all" and settings.component not in family.components:
        raise UsageError(
            f"unknown component {settings.component!r} (use {', '.join(family.components)} or all)"
        )
    chosen = tuple(family.components) if settings.component == "all" else (settings.component,)
    stacks = [s for c in chosen for s in family.components[c]]

    lora, present = {}, {s: set() for s in stacks}
    for name, shape in shapes.items():
        module, _, leaf = name.rpartition(".")
        where = family.layer_of(module) if leaf == "weight" and not family.is_codec(name) else None
        if where is None or where[0] not in stacks:
            continue
        stack, index, linear = where
        present[stack].add(index)
        if linear in names and (layers is None or index in layers) and len(shape) == 2:
            lora[module] = tuple(shape)
    if layers is not None:
        missing = layers - set().union(*present.values())
        if missing:
            have = ", ".join(f"{s} has {format_layers(present[s]) or 'none'}" for s in stacks)
            raise VoxloraError(f"--layers {format_layers(missing)}: no such layer ({have})")
    for head in heads:
        path = _first_present(family.heads[head], shapes) or family.heads[head][0]
        component = family.head_component.get(head)
        if component is not None and component not in chosen:
            raise VoxloraError(
                f"{path} belongs to the {component}, which --component {settings.component} leaves out"
            )
        if f"{path}.weight" not in shapes:
            if head not in _items(settings.targets):  # from a preset (VoxCPM proj): as its LoRA, skipped
                continue
            raise VoxloraError(f"{path}: not in this model")
        lora[path] = tuple(shapes[f"{path}.weight"])
    if not lora:
        raise VoxloraError(f"--targets {','.join(settings.targets)} matches no module of this model")

    trained = {}
    if settings.train_embeddings:
        for paths in family.embeddings:
            module = _first_present(paths, shapes)
            if module is None:
                raise VoxloraError(f"{paths[0]}: not in this model, cannot --train-embeddings")
            if module in lora:
                raise VoxloraError(f"{module}: cannot be both a LoRA target and trained directly")
            trained[f"{module}.weight"] = tuple(shapes[f"{module}.weight"])
    return Selection(
        lora=dict(sorted(lora.items(), key=lambda kv: family.module_order(kv[0]))), trained=trained
    )


def module_order(module: str, family: Family = families.CSM):
    """A sort key putting modules in model order (CSM: backbone layers, lm_head, decoder)."""
    return family.module_order(module)


def describe(modules, family: Family | None = None) -> dict:
    """What a list of module paths targets, for reports (``family`` recognised when not given).

    >>> describe(["backbone_model.layers.0.self_attn.q_proj", "backbone_model.layers.1.self_attn.q_proj",
    ...           "lm_head"])
    {'targets': ['q_proj', 'lm_head'], 'layers': {'backbone': '0-1'}, 'other': []}
    """
    modules = list(modules)
    family = family or families.guess(modules)
    ranks = {n: i for i, n in enumerate(family.short_names.values())}
    names, layers, other = [], {}, []
    for module in sorted(modules, key=family.module_order):
        where = family.layer_of(module)
        if where is not None:
            stack, index, name = where
            layers.setdefault(stack, set()).add(index)
        elif family.head_of(module) is not None:
            name = module
        else:
            other.append(module)
            continue
        if name not in names:
            names.append(name)
    names.sort(key=lambda n: ranks.get(n, len(ranks)))
    return {"targets": names, "layers": {s: format_layers(v) for s, v in layers.items()}, "other": other}


def base_params(shapes: dict, family: Family | None = None) -> int:
    """Parameters of the model's transformers (the codec excluded), tied tensors counted once."""
    family = family or families.guess(shapes)
    return sum(math.prod(s) for n, s in shapes.items() if not family.is_codec(n) and n not in TIED)
