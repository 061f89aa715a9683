"""mkmanifest's own options (what `voxlora.prepare` does with each clip, and where the output goes).

`prepare_options` adds ``--sample-rate`` to ``--jobs`` to a click command; the options for raw
recordings (``--segment``, ``--transcribe``, the validation split) are `voxlora.rawdata_options`'.
"""

import click

from voxlora.clikit import apply_options, overwrite_option, speakers_option

OPTIONS = [  # in --help's order
    click.option(
        "--sample-rate", type=click.IntRange(min=1), metavar="HZ", help="Resample to HZ (needs --out-dir)."
    ),
    click.option(
        "--out-dir",
        type=click.Path(file_okay=False),
        help="Write mono 16-bit WAVs here; the originals stay untouched.",
    ),
    click.option(
        "--min-duration", type=click.FloatRange(min=0), metavar="SECONDS", help="Reject shorter clips."
    ),
    click.option(
        "--max-duration", type=click.FloatRange(min=0), metavar="SECONDS", help="Reject longer clips."
    ),
    click.option(
        "--speaker", type=click.IntRange(min=0), metavar="ID", help="Set this speaker id on every record."
    ),
    speakers_option,
    click.option(
        "--rejects",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Write each rejected input here (JSONL + reason).",
    ),
    click.option("--strict", is_flag=True, help="Stop with exit 1 at the first bad input."),
    overwrite_option,
    click.option(
        "--to",
        "fmt",
        type=click.Choice(["jsonl", "csm-mlx", "voxcpm", "chatml"]),
        default="jsonl",
        show_default=True,
        help="Output layout: voxlora JSONL, csm-mlx's JSON list, VoxCPM's JSONL, or Higgs Audio's "
        "ChatML voice-cloning records (a reference and a target clip of one speaker each).",
    ),
    click.option(
        "-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
    ),
]


def prepare_options(f):
    """Add mkmanifest's own options to a click command, as if each were a decorator above it, in order."""
    return apply_options(OPTIONS, f)
