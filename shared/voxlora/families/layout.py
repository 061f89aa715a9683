"""One model family's checkpoint layout, as data: the `Family` record that `targets`, `merge` and
`adapter_report` read (the family packages under `voxlora.families` each fill one).
"""

import re
from dataclasses import dataclass, field
from functools import cached_property


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
