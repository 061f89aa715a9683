"""synth's options: `synth_options` adds ``--model`` to ``--strict``, each default `SynthConfig`'s.

Importing this module does not import torch, so ``synth --help`` stays fast.
"""

import click

from voxlora.backends import BACKENDS
from voxlora.clikit import apply_options
from voxlora.codec_option import codec_option
from voxlora.synth.config import SynthConfig

D = SynthConfig()  # the defaults (this import does not load torch)

OPTIONS = [  # in --help's order
    click.option("--model", "-m", default=D.model, show_default=True, help="Hub id or local CSM folder."),
    click.option(
        "--backend",
        type=click.Choice(["auto", *BACKENDS]),
        default=D.backend,
        show_default=True,
        help="torch or mlx (auto: mlx on Apple silicon when installed, else torch).",
    ),
    click.option("--adapter", "-a", type=click.Path(), help="LoRA adapter folder (peft, voxlora or mlx-lm)."),
    click.option("--merge", is_flag=True, help="Merge the adapter into the weights in memory (same audio)."),
    click.option(
        "--speaker",
        "-s",
        metavar="ID|NAME",
        help=f"Speaker id, or a name the adapter knows [default: the adapter's speaker if it has one, else {D.speaker}].",
    ),
    click.option(
        "--context", "contexts", multiple=True, type=click.Path(), help="Reference clip (repeatable)."
    ),
    click.option("--context-text", "context_texts", multiple=True, help="Transcript of each --context clip."),
    click.option(
        "--max-seconds",
        type=float,
        default=D.max_seconds,
        show_default=True,
        help="Longest clip to generate.",
    ),
    click.option(
        "--max-total-seconds",
        type=click.FloatRange(min=0, min_open=True),
        help="Longest clip in all: a long text is spoken in sentence chunks of --max-seconds each.",
    ),
    click.option(
        "--temperature",
        type=click.FloatRange(min=0),
        default=D.temperature,
        show_default=True,
        help="0: greedy.",
    ),
    click.option(
        "--top-k", type=click.IntRange(min=0), default=D.top_k, show_default=True, help="0: no top-k."
    ),
    click.option(
        "--cfg",
        type=click.FloatRange(min=0),
        default=D.cfg,
        show_default=True,
        help="VoxCPM: guidance value.",
    ),
    click.option(
        "--timesteps",
        type=click.IntRange(min=1),
        default=D.timesteps,
        show_default=True,
        help="VoxCPM: diffusion steps.",
    ),
    click.option("--seed", type=int, default=D.seed, show_default=True, help="Each clip is seeded with it."),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=D.batch_size,
        show_default=True,
        help="Stdin mode: speak up to N lines at once (torch; the same audio as one at a time).",
    ),
    click.option(
        "--sample-rate", type=click.IntRange(min=1000), help="Resample the WAVs (default: the model's)."
    ),
    click.option(
        "--device",
        default=D.device,
        show_default=True,
        help="torch: cpu, cuda, cuda:1, ... (auto: cuda if any); mlx: cpu or gpu.",
    ),
    click.option(
        "--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=D.dtype, show_default=True
    ),
    click.option("-o", "--output", type=click.Path(dir_okay=False), help="The WAV to write (with TEXT)."),
    click.option(
        "--out-dir", type=click.Path(file_okay=False), help="Folder for numbered WAVs (stdin mode)."
    ),
    click.option(
        "--strict", is_flag=True, help="Stdin mode: stop at the first bad line (default: report it, go on)."
    ),
    codec_option,
]


def synth_options(f):
    """Add synth's options to a click command, as if each were a decorator above it, in order."""
    return apply_options(OPTIONS, f)
