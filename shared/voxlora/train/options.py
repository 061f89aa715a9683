"""lora-train's options: `train_options` adds every flag of the command (``--model`` to ``--nproc``).

Every default is `TrainConfig`'s (`opt` reads it from there), and the LoRA flags are
`voxlora.lora_options`' (which hands the command one ``settings`` argument). Importing this module
does not import torch, so ``lora-train --help`` stays fast.
"""

from pathlib import Path

import click

from voxlora.adapter_base import allow_other_base_option
from voxlora.clikit import apply_options, overwrite_option
from voxlora.codec_option import codec_option
from voxlora.lora_options import lora_options
from voxlora.train.config import CHOICES, FULL_LR, LORA_LR, TrainConfig

D = TrainConfig()  # every default lives in TrainConfig
POSITIVE, COUNT = click.IntRange(min=1), click.IntRange(min=0)  # bad values are usage errors (exit 2)


def opt(*decls, **kwargs):
    """click.option whose default (when it has one) is TrainConfig's."""
    name = decls[-1].lstrip("-").replace("-", "_")
    if getattr(D, name, None) is not None and not (kwargs.get("is_flag") or kwargs.get("required")):
        kwargs.setdefault("default", getattr(D, name))
        kwargs.setdefault("show_default", True)
    return click.option(*decls, **kwargs)


def choice(name: str, **kwargs):
    return opt("--" + name.replace("_", "-"), type=click.Choice(CHOICES[name]), **kwargs)


# fmt: off
OPTIONS = [  # in --help's order
    opt("--model", required=True, help="Base model: a folder in sesame/csm-1b's layout, or a hub id."),
    opt("--manifest", required=True, help="Training manifest (JSONL); - reads stdin whole first."),
    opt("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
        help="Output folder: the adapter, metrics.jsonl, loss.png, step_NNNNNNN/ checkpoints."),
    opt("--adapter", type=click.Path(path_type=Path), help="Start from this adapter (e.g. lora-init's)."),
    lora_options,
    opt("--full", is_flag=True, help="Train every weight except the codec (no adapter)."),
    opt("--epochs", type=POSITIVE, help="Passes over the manifest [default: from the data, 5-50]."),
    opt("--max-steps", type=POSITIVE, help="Optimizer steps (overrides --epochs)."),
    opt("--batch-size", type=POSITIVE, help="Clips per micro-batch."),
    opt("--grad-accum", type=POSITIVE, help="Micro-batches per optimizer step."),
    opt("--max-batch-frames", type=POSITIVE, help="Length-sorted batches of at most N padded positions (not --batch-size)."),
    opt("--lr", type=click.FloatRange(min=0, min_open=True), help=f"Peak learning rate [default: {LORA_LR} LoRA, {FULL_LR} --full]."),
    opt("--warmup-steps", type=COUNT, help="Linear warm-up steps [default: --warmup-fraction of the run]."),
    opt("--warmup-fraction", type=click.FloatRange(0, 1, max_open=True), help="Warm-up's share of the steps when --warmup-steps is not given."),
    choice("lr_schedule"),
    choice("optimizer"),
    opt("--weight-decay", type=click.FloatRange(min=0)),
    opt("--max-grad-norm", type=click.FloatRange(min=0), help="0: no clipping."),
    opt("--seed", type=click.IntRange(min=0)),
    opt("--decoder-frame-fraction", type=click.FloatRange(0, 1, min_open=True),
        help="Share of frames the depth decoder learns on (1: all) [default: from the data, 1 for small sets]."),
    opt("--default-speaker", type=click.IntRange(min=0), help='CSM speaker for records without "speaker".'),
    choice("backend", help="torch, or mlx (Apple silicon; mlx[cpu] elsewhere); auto: mlx on Apple silicon when installed."),
    choice("dtype", help="Compute precision (autocast); trained weights stay fp32. auto: bf16 on a CUDA GPU, else fp32."),
    opt("--device", help="auto, cpu, cuda, cuda:N (one GPU of several) or mps."),
    opt("--val-manifest", help="Validation manifest (JSONL)."),
    opt("--val-every", type=COUNT, help="Validate every N steps (0: only at the end)."),
    opt("--log-every", type=POSITIVE, help="Steps per metrics line."),
    opt("--save-every", type=COUNT, help="Checkpoint into OUT/step_NNNNNNN/ every N steps (0: by time only)."),
    opt("--save-minutes", type=click.FloatRange(min=0), help="Also a checkpoint after this many minutes since the last (0: never)."),
    opt("--keep-last", type=POSITIVE, help="Checkpoints kept."),
    choice("save_mode", help="lora: the adapter; full: a merged model (OUT/merged); both."),
    opt("--cache-dir", help="Mimi codes cache [default: voxlora-codes/ beside OUT]; safe to delete."),
    opt("--sample-every", type=COUNT, help="Speak the sample texts into OUT/samples/step_NNNNNNN/ every N steps (scored with [eval])."),
    opt("--sample-texts", type=click.Path(dir_okay=False), help="Sample texts, one per line [default: the first two of the val (else train) manifest]."),
    opt("--sample-max-seconds", type=click.FloatRange(min=0, min_open=True), help="Longest sample clip."),
    opt("--keep-best", type=click.Choice(["val_loss", "wer", "speaker_sim"]), help="Keep OUT/best/: the adapter at the best value so far."),
    opt("--resume", is_flag=True, help="Continue from the newest checkpoint in OUT (same settings)."),
    opt("--strict", is_flag=True, help="Stop at the first bad record or clip (default: warn, skip it)."),
    opt("--speakers", type=click.Path(dir_okay=False), metavar="FILE",
        help='Speaker names ({"name": id} JSON) to record in the adapter, beside the ids it trained on.'),
    opt("--tensorboard", metavar="DIR", help="Also write the metrics (and audio samples) as TensorBoard events here."),
    opt("--wandb", metavar="PROJECT", help="Also log the metrics to this Weights & Biases project (needs wandb)."),
    overwrite_option,
    allow_other_base_option,
    codec_option,
    click.option("--reference", type=click.Choice(["auto", "none"]), default=D.reference, show_default=True,
                 help="Higgs: pair each target with another clip of its speaker as the voice reference (auto)."),
    opt("--text-loss", is_flag=True, help="Higgs: add the text head's loss (the model's text_lm_head)."),
    click.option("--grad-checkpointing/--no-grad-checkpointing", default=None,
                 help="Recompute activations in backward (less memory) [default: on for models over 2B]."),
    click.option("--quantize", type=click.Choice(["4bit"]), default=None,
                 help="QLoRA: load the frozen base in 4 bits (bitsandbytes; CUDA only)."),
    choice("attention", help="transformers' attention kernel (torch): sdpa; eager (the reference); flash_attention_2 (flash-attn, CUDA)."),
    opt("--compile", is_flag=True, help="torch.compile the model (CSM, torch), batches padded to a few shapes: a handful of compiles."),
    click.option("--dry-run", is_flag=True, help="Print the estimated peak memory for these settings; load nothing."),
    click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Processes on this machine, one GPU each (torchrun; see the README for several machines)."),
]
# fmt: on


def train_options(f):
    """Add lora-train's options to a click command, as if each were a decorator above it, in order."""
    return apply_options(OPTIONS, f)
