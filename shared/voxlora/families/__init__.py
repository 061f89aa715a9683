"""Model families as data: what a checkpoint of each TTS model looks like to voxlora's file tools.

A `Family` says, for one model (Sesame CSM, Higgs Audio v2, VoxCPM), where its transformer layers
are in the tensor names, which linears each layer has, the presets ``--targets`` accepts, the
single modules outside the layers that can be targeted by name ("heads"), and the codec or audio
tokenizer that is never targeted. `targets`, `merge` and `adapter_report` read these fields and
never branch on the model, so a new family is one small module here, not a fork of the code.

Which family a folder holds comes from its config.json (`detect`): ``model_type`` (CSM, Higgs),
else ``architecture`` (VoxCPM writes ``"architecture": "voxcpm"`` and no model_type); ``--family``
overrides it. An adapter without a recorded family is recognised by its module names (`guess`).

    >>> detect({"model_type": "higgs_audio_v2"}).name
    'higgs-audio-v2'
"""

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.jsonfile import read_json_object


@dataclass(frozen=True)
class Family:
    """One model family's checkpoint layout (module paths are tensor names without ``.weight``)."""

    name: str  # the --family value
    model_types: tuple[str, ...]  # config.json "model_type" (or "architecture") values
    # stack -> the layer list's path(s); several when layouts differ (original vs transformers)
    stacks: dict[str, tuple[str, ...]]
    linears: tuple[str, ...]  # every layer's linears, relative to the layer, in model order
    presets: dict[str, tuple[str, ...]]  # --targets shorthands -> names (of linears or heads)
    components: dict[str, tuple[str, ...]]  # --component value -> stacks ("all": every one of these)
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # head -> path(s), first present wins
    head_aliases: dict[str, str] = field(default_factory=dict)  # other names of a head
    head_component: dict[str, str] = field(default_factory=dict)  # head -> component; absent: any
    order: tuple[str, ...] = ()  # stacks and heads in model order (sort key of module lists)
    embeddings: tuple[tuple[str, ...], ...] = ()  # --train-embeddings: each one's path(s)
    tied: dict[str, str] = field(default_factory=dict)  # alias tensor -> the tensor stored once
    codec: tuple[str, ...] = ()  # tensor-name prefixes never targeted, never cast by lora-merge
    side_files: tuple[str, ...] = ()  # weight-like files lora-merge copies as they are (never read)
    pickle_weights: tuple[str, ...] = ()  # torch-pickle weights it ships, read as tensors only
    description: str = ""

    @cached_property
    def layer_pattern(self) -> re.Pattern:
        prefixes = sorted(
            {re.escape(p) for paths in self.stacks.values() for p in paths}, key=len, reverse=True
        )
        return re.compile(rf"^({'|'.join(prefixes)})\.(\d+)\.(.+)$")

    @cached_property
    def stack_of_prefix(self) -> dict[str, str]:
        return {p: stack for stack, paths in self.stacks.items() for p in paths}

    @cached_property
    def short_names(self) -> dict[str, str]:
        """linear -> the name reports use: its leaf (``q_proj``) unless two linears share the leaf
        (Higgs: ``mlp.gate_proj`` and ``audio_mlp.gate_proj``)."""
        leaves = [rel.rpartition(".")[2] for rel in self.linears]
        return {
            rel: leaf if leaves.count(leaf) == 1 else rel
            for rel, leaf in zip(self.linears, leaves, strict=True)
        }

    def layer_of(self, module: str):
        """(stack, layer index, short name) of a layer linear's path, or None.

        >>> from voxlora.families import CSM
        >>> CSM.layer_of("backbone_model.layers.3.self_attn.q_proj")
        ('backbone', 3, 'q_proj')
        """
        m = self.layer_pattern.match(module)
        if not m or m[3] not in self.short_names:
            return None
        return self.stack_of_prefix[m[1]], int(m[2]), self.short_names[m[3]]

    def head_of(self, module: str) -> str | None:
        """The head a module path is (its canonical name), or None."""
        return next((h for h, paths in self.heads.items() if module in paths), None)

    def is_codec(self, name: str) -> bool:
        return name.startswith(self.codec)

    def target_names(self) -> list[str]:
        """Everything --targets accepts for this family (for messages)."""
        blocks = sorted({rel.rpartition(".")[0] for rel in self.linears if "." in rel})
        names = [*self.short_names.values(), *blocks, *self.presets, *self.heads, *self.head_aliases]
        return list(dict.fromkeys(names))

    def matching_linears(self, item: str) -> list[str]:
        """Short names of the linears ``item`` names: a linear (``q_proj``, ``mlp.gate_proj``), a
        leaf shared by several (Higgs ``gate_proj``: both FFNs), or a block (``audio_mlp``)."""
        return [
            self.short_names[rel]
            for rel in self.linears
            if rel == item or rel.endswith("." + item) or rel.startswith(item + ".")
        ]

    def base_name(self, module: str, shapes: dict) -> str:
        """``module`` as the base with these tensor names calls it, when it uses another of this
        family's layouts (Higgs ``model.layers.0.mlp.up_proj`` -> ``layers.0.mlp.up_proj``); else as is.

        >>> from voxlora.families import FAMILIES
        >>> FAMILIES["higgs-audio-v2"].base_name("model.layers.0.mlp.up_proj", {"layers.0.mlp.up_proj.weight": 0})
        'layers.0.mlp.up_proj'
        """
        if f"{module}.weight" in shapes:
            return module
        m = self.layer_pattern.match(module)
        if m:
            paths = self.stacks[self.stack_of_prefix[m[1]]]
            candidates = [f"{p}.{m[2]}.{m[3]}" for p in paths]
        else:
            candidates = next(
                (paths for paths in (*self.heads.values(), *self.embeddings) if module in paths), ()
            )
        return next((c for c in candidates if f"{c}.weight" in shapes), module)

    def module_order(self, module: str):
        """Sort key putting module paths in model order (stacks and heads as in ``order``)."""
        where = self.layer_of(module)
        if where is not None:
            stack, index, name = where
            rank = list(self.short_names.values()).index(name)
            return (self.order.index(stack), index, rank, name)
        head = self.head_of(module)
        if head is not None and head in self.order:
            return (self.order.index(head), 0, 0, module)
        return (len(self.order), 0, 0, module)


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
    if name:
        return get(name)
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
