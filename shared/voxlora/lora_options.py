"""What a user chooses about a LoRA adapter (`LoraSettings`), and the flags that choose it.

`LoraSettings` is the one place the defaults live (from the CSM LoRA guides: r 8, alpha 16, no
dropout, q_proj and v_proj). `lora_options` adds the matching flags to a click command and hands the
command one ``settings`` argument; `lora-init` and `lora-train` share it, so the two never disagree.
`family_option` adds ``--family`` (which model family a checkpoint is, see `voxlora.families`) to the
file tools; it overrides what the checkpoint's config.json says.
"""

import dataclasses
import functools
from dataclasses import dataclass

import click

from voxlora import targets
from voxlora.clikit import apply_options


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8  # r, the width of A (r, in) and B (out, r)
    alpha: float = 16.0  # scaling = alpha / rank (rsLoRA: alpha / sqrt(rank))
    dropout: float = 0.0  # dropout on the LoRA branch's input, training only
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # module names or presets, see targets.py
    component: str = "all"  # backbone | decoder | all
    layers: str | None = None  # "8-15", "0-3,8": layer indices within each stack; None = all
    rslora: bool = False  # rank-stabilised scaling alpha / sqrt(rank)
    init: str = "kaiming"  # A's init: kaiming (peft's default) | gaussian; B is always zeros
    train_embeddings: bool = False  # train the text and audio embeddings directly (modules_to_save)
    family: str | None = None  # model family (voxlora.families); None: recognised from the checkpoint

    def to_dict(self) -> dict:
        """JSON-ready, for the adapter's voxlora.json (so every run can be reproduced).

        ``family`` is left out while None, so CSM runs record exactly what they did before families.
        """
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets)
        if d["family"] is None:
            del d["family"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LoraSettings":
        """The inverse of `to_dict`; unknown keys (from a newer voxlora) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "targets" in kwargs:
            kwargs["targets"] = tuple(kwargs["targets"])
        return cls(**kwargs)


DEFAULTS = LoraSettings()
FLAGS = ("rank", "alpha", "dropout", "targets", "component", "layers", "rslora", "init", "train_embeddings")


def _targets(ctx, param, value):
    try:
        targets.check_targets(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return tuple(t.strip() for t in value.split(",") if t.strip())


def _layers(ctx, param, value):
    if value is None:
        return None
    try:
        targets.parse_layers(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


def lora_options(f):
    """Add ``-r/--rank --alpha --dropout --targets --component --layers --rslora --init
    --train-embeddings`` to a click command, which then receives ``settings: LoraSettings``."""
    options = [
        click.option(
            "-r",
            "--rank",
            type=click.IntRange(min=1),
            default=DEFAULTS.rank,
            show_default=True,
            help="LoRA rank r.",
        ),
        click.option(
            "--alpha",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULTS.alpha,
            show_default=True,
            help="LoRA alpha; the update is scaled by alpha/r.",
        ),
        click.option(
            "--dropout",
            type=click.FloatRange(0, 1, max_open=True),
            default=DEFAULTS.dropout,
            show_default=True,
            help="Dropout on the LoRA branch while training.",
        ),
        click.option(
            "--targets",
            default=",".join(DEFAULTS.targets),
            show_default=True,
            callback=_targets,
            help="Comma-separated module names (q_proj k_proj v_proj o_proj gate_proj up_proj "
            "down_proj), presets (attn, mlp, all-linear = attn+mlp, no heads) and heads "
            "(codebook0_head = lm_head, projection = the decoder's input projector). "
            "Higgs Audio v2: attn, text-ffn, audio-ffn, all-linear; VoxCPM: attn, mlp, proj.",
        ),
        click.option(
            "--component",
            type=click.Choice(targets.COMPONENT_CHOICES),
            default=DEFAULTS.component,
            show_default=True,
            help="Which transformer: backbone, decoder (depth decoder) or all; VoxCPM: lm, dit "
            "or all. The codec is never targeted.",
        ),
        click.option(
            "--layers",
            default=DEFAULTS.layers,
            callback=_layers,
            metavar="LIST",
            help="Only these layers of each stack, e.g. 8-15 or 0-3,8 (default: all).",
        ),
        click.option("--rslora", is_flag=True, default=DEFAULTS.rslora, help="rsLoRA scaling alpha/sqrt(r)."),
        click.option(
            "--init",
            type=click.Choice(["kaiming", "gaussian"]),
            default=DEFAULTS.init,
            show_default=True,
            help="Init of A (B starts at zero).",
        ),
        click.option(
            "--train-embeddings",
            is_flag=True,
            default=DEFAULTS.train_embeddings,
            help="Also train the text and audio-token embeddings directly (peft modules_to_save).",
        ),
    ]

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        settings = LoraSettings(**{name: kwargs.pop(name) for name in FLAGS})
        return f(*args, settings=settings, **kwargs)

    return apply_options(options, wrapper)


def family_option(f):
    """Add ``--family`` to a click command, which then receives ``family`` (a name or None)."""
    from voxlora.families import NAMES

    return click.option(
        "--family",
        type=click.Choice(NAMES),
        help="Model family of the checkpoint (default: from its config.json model_type).",
    )(f)
