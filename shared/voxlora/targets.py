"""Which CSM modules a LoRA adapter wraps, picked by name from the checkpoint's tensor names.

CSM is two Llama-style transformers and a codec::

    backbone_model.layers.{i}.self_attn.{q,k,v,o}_proj    backbone (16 layers in CSM-1B)
    backbone_model.layers.{i}.mlp.{gate,up,down}_proj
    depth_decoder.model.layers.{i}....                      depth decoder (4 layers), same names
    lm_head                                                 the backbone's head (Sesame: codebook0_head)
    depth_decoder.model.inputs_embeds_projector             backbone -> decoder width (Sesame: projection)
    codec_model.*                                           the Mimi codec: never targeted, though its
                                                            own transformer also has q_proj, k_proj, ...

Selection works on ``{tensor name: shape}`` (the safetensors headers, see `base_shapes`), never on a
loaded model, so a dry run over CSM-1B is instant, and it returns exact module paths, so peft is
given an unambiguous list rather than a suffix like ``q_proj`` that would also hit the codec.
"""

import math
import re
from dataclasses import dataclass, field

from voxlora.errors import VoxloraError

LAYER_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PRESETS = {
    "attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
    "all-linear": LAYER_NAMES,  # the layers' linears only: heads only when named
}
HEADS = {
    "lm_head": "lm_head",
    "codebook0_head": "lm_head",
    "projection": "depth_decoder.model.inputs_embeds_projector",
    "inputs_embeds_projector": "depth_decoder.model.inputs_embeds_projector",
}
COMPONENTS = {"backbone": "backbone_model.layers", "decoder": "depth_decoder.model.layers"}
COMPONENT_CHOICES = ("backbone", "decoder", "all")
HEAD_COMPONENT = {"lm_head": "backbone", "depth_decoder.model.inputs_embeds_projector": "decoder"}

# Trained directly by --train-embeddings (peft's modules_to_save): what the backbone reads.
EMBEDDINGS = ("embed_text_tokens", "backbone_model.embed_tokens.embed_audio_tokens")
# With tie_codebooks_embeddings (CSM-1B's default) the backbone's audio embedding *is* the depth
# decoder's input embedding, and checkpoints store it once, under the decoder's name.
TIED = {"backbone_model.embed_tokens.embed_audio_tokens.weight": "depth_decoder.model.embed_tokens.weight"}

_LAYER = re.compile(
    r"^(backbone_model\.layers|depth_decoder\.model\.layers)\.(\d+)\.(?:self_attn|mlp)\.(\w+)$"
)
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


def expand_targets(spec) -> tuple[list[str], list[str]]:
    """``"attn,lm_head"`` -> (layer module names, head module paths); ValueError for unknown names.

    >>> expand_targets("attn,codebook0_head")
    (['q_proj', 'k_proj', 'v_proj', 'o_proj'], ['lm_head'])
    """
    items = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec) if t.strip()]
    if not items:
        raise ValueError("no targets given")
    names, heads = [], []
    for item in items:
        if item in PRESETS:
            names += PRESETS[item]
        elif item in LAYER_NAMES:
            names.append(item)
        elif item in HEADS:
            heads.append(HEADS[item])
        elif any(w in item for w in _EMBEDDING_WORDS):
            raise ValueError(
                f"{item}: embeddings are not LoRA targets; use --train-embeddings to train them directly"
            )
        else:
            known = ", ".join([*LAYER_NAMES, *PRESETS, *HEADS])
            raise ValueError(f"unknown target {item!r} (known: {known})")
    return list(dict.fromkeys(names)), list(dict.fromkeys(heads))


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
    """Every tensor a CSM model has, name -> shape, from the safetensors headers (nothing loaded).

    Tied tensors stored once (see `TIED`) are listed under both names, as the loaded model has them.
    """
    from voxlora.models.csm import weight_files
    from voxlora.safetensors_stream import shapes

    return with_tied(shapes(weight_files(model)))


def with_tied(shapes: dict) -> dict:
    """``shapes`` plus the tied names a checkpoint stores only once."""
    shapes = dict(shapes)
    for alias, stored in TIED.items():
        if alias not in shapes and stored in shapes:
            shapes[alias] = shapes[stored]
    return shapes


def _layer_of(module: str):
    """(component, layer index, leaf name) of a layer module path, or None."""
    m = _LAYER.match(module)
    if not m:
        return None
    component = next(c for c, prefix in COMPONENTS.items() if prefix == m[1])
    return component, int(m[2]), m[3]


def select(shapes: dict, settings) -> Selection:
    """The modules ``settings`` (a LoraSettings) picks in a model with these tensor shapes.

    Raises VoxloraError when the choice matches nothing, names a layer no selected stack has, or
    names a head outside the selected component.
    """
    try:
        names, heads = expand_targets(settings.targets)
        layers = parse_layers(settings.layers) if settings.layers else None
    except ValueError as e:
        raise VoxloraError(str(e)) from None
    if settings.component not in COMPONENT_CHOICES:
        raise VoxloraError(f"unknown component {settings.component!r} (use backbone, decoder or all)")
    components = tuple(COMPONENTS) if settings.component == "all" else (settings.component,)

    lora, present = {}, {c: set() for c in components}
    for name, shape in shapes.items():
        module, _, leaf = name.rpartition(".")
        where = _layer_of(module) if leaf == "weight" else None
        if where is None or where[0] not in components:
            continue
        component, index, module_name = where
        present[component].add(index)
        if module_name in names and (layers is None or index in layers) and len(shape) == 2:
            lora[module] = tuple(shape)
    if layers is not None:
        missing = layers - set().union(*present.values())
        if missing:
            have = ", ".join(f"{c} has {format_layers(present[c]) or 'none'}" for c in components)
            raise VoxloraError(f"--layers {format_layers(missing)}: no such layer ({have})")
    for head in heads:
        component = HEAD_COMPONENT[head]
        if component not in components:
            raise VoxloraError(
                f"{head} belongs to the {component}, which --component {settings.component} leaves out"
            )
        if f"{head}.weight" not in shapes:
            raise VoxloraError(f"{head}: not in this model")
        lora[head] = tuple(shapes[f"{head}.weight"])
    if not lora:
        raise VoxloraError(f"--targets {','.join(settings.targets)} matches no module of this model")

    trained = {}
    if settings.train_embeddings:
        for module in EMBEDDINGS:
            if module in lora:
                raise VoxloraError(f"{module}: cannot be both a LoRA target and trained directly")
            if f"{module}.weight" not in shapes:
                raise VoxloraError(f"{module}: not in this model, cannot --train-embeddings")
            trained[f"{module}.weight"] = tuple(shapes[f"{module}.weight"])
    return Selection(lora=dict(sorted(lora.items(), key=lambda kv: module_order(kv[0]))), trained=trained)


def module_order(module: str):
    """A sort key putting modules in model order: backbone layers, lm_head, decoder, by layer number."""
    where = _layer_of(module)
    if where is None:
        return (2 if module.startswith("depth_decoder") else 1, 0, 0, module)
    component, index, name = where
    rank = LAYER_NAMES.index(name) if name in LAYER_NAMES else len(LAYER_NAMES)
    return (0 if component == "backbone" else 3, index, rank, name)


def describe(modules) -> dict:
    """What a list of module paths targets, for reports.

    >>> describe(["backbone_model.layers.0.self_attn.q_proj", "backbone_model.layers.1.self_attn.q_proj",
    ...           "lm_head"])
    {'targets': ['q_proj', 'lm_head'], 'layers': {'backbone': '0-1'}, 'other': []}
    """
    names, layers, other = [], {}, []
    for module in sorted(modules, key=module_order):
        where = _layer_of(module)
        if where is not None:
            component, index, name = where
            layers.setdefault(component, set()).add(index)
        elif module in HEAD_COMPONENT:
            name = module
        else:
            other.append(module)
            continue
        if name not in names:
            names.append(name)
    names.sort(key=lambda n: LAYER_NAMES.index(n) if n in LAYER_NAMES else len(LAYER_NAMES))
    return {"targets": names, "layers": {c: format_layers(v) for c, v in layers.items()}, "other": other}


def base_params(shapes: dict) -> int:
    """Parameters of the CSM transformers (the codec excluded), tied tensors counted once."""
    return sum(math.prod(s) for n, s in shapes.items() if not n.startswith("codec_model.") and n not in TIED)
