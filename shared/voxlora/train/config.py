"""`TrainConfig`: every knob of `lora-train`, with its default, in one flat dataclass.

The command line fills it, `resolve` settles what depends on other fields (the learning rate, the
cache folder), and the resolved config is written into ``OUT/voxlora-train.json`` and into every
checkpoint, so a run can be repeated or resumed from its own record.
"""

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from voxlora.errors import UsageError, VoxloraError

LORA_LR = 5e-4  # the usual LoRA learning rate for CSM-sized models
FULL_LR = 1e-5  # full fine-tuning moves every weight: a much smaller step
CACHE_NAME = "voxlora-codes"  # the default --cache-dir, a folder beside OUT (shared by runs there)


@dataclass
class TrainConfig:
    # what to train
    model: str = ""  # repo id or folder of the base CSM
    manifest: str = ""  # JSONL manifest ("-" = stdin, read whole before training)
    out: str = ""  # output folder: the adapter, metrics.jsonl, loss.png, step_NNNNNNN/ checkpoints
    adapter: str | None = None  # start from this adapter folder (e.g. from lora-init) instead of a fresh one
    lora: dict = field(default_factory=dict)  # LoraSettings.to_dict() of the adapter being trained
    full: bool = False  # train every weight except the codec (no adapter)

    # how long
    epochs: int | None = (
        None  # passes over the manifest (ignored with max_steps); None: from the data (data_defaults)
    )
    max_steps: int | None = None  # optimizer steps; overrides epochs

    # batches
    batch_size: int = 4  # clips per micro-batch (ignored with max_batch_frames)
    grad_accum: int = 1  # micro-batches per optimizer step
    max_batch_frames: int | None = None  # length-sorted buckets of at most this many padded positions

    # optimisation
    lr: float | None = None  # None: LORA_LR, or FULL_LR with full
    warmup_steps: int | None = None  # linear warm-up from 0 to lr; None: warmup_fraction of the run's steps
    warmup_fraction: float = 0.05  # the warm-up's share of the steps when warmup_steps is None
    lr_schedule: str = "cosine"  # cosine | linear | constant (after warm-up)
    optimizer: str = "adamw"  # adamw | adam | sgd
    weight_decay: float = 0.0  # decoupled for adamw, L2 for adam and sgd
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None or 0: no clipping
    seed: int = 0  # data order, frame choice, fresh adapter init, dropout

    # CSM specifics
    decoder_frame_fraction: float | None = (
        None  # frames the depth decoder learns on (1 = every frame); None: from the data
    )
    default_speaker: int = 0  # CSM's [speaker] for records without "speaker"

    # numerics and device
    backend: str = "auto"  # torch | mlx; auto: mlx on Apple silicon when installed, else torch
    dtype: str = "auto"  # auto | fp32 | bf16 | fp16: compute precision (autocast); master weights stay fp32
    # auto: bf16 on a CUDA GPU (torch backend), fp32 elsewhere, as synth's --dtype auto
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    attention: str = "sdpa"  # sdpa | eager | flash_attention_2: transformers' attn_implementation (torch)
    compile: bool = (
        False  # torch.compile the model's transformer stacks, batches padded to a few shapes (CSM, torch)
    )
    processes: int = 1  # processes the run started on (torchrun): a step is grad_accum x processes micro-batches; kept on --resume

    # validation, logging, saving
    val_manifest: str | None = None
    val_every: int = 0  # validate every N steps (0: only at the end); needs val_manifest
    log_every: int = 10  # one metrics line every N steps
    save_every: int = 0  # a checkpoint OUT/step_NNNNNNN/ every N steps (0: by time only)
    save_minutes: float = 10.0  # also a checkpoint when this many minutes passed since the last (0: never)
    keep_last: int | None = 3  # checkpoints kept (None: all)
    save_mode: str = "lora"  # lora | full | both: the adapter, a merged model in the base's layout, or both
    cache_dir: str | None = None  # Mimi codes cache; None: OUT/../voxlora-codes
    resume: bool = False  # continue from the newest OUT/step_NNNNNNN/ checkpoint
    strict: bool = False  # a bad manifest record or clip stops the run (default: warned about, skipped)
    speakers: str | None = None  # JSON {"name": id}: names of the trained speaker ids, kept in voxlora.json
    tensorboard: str | None = None  # also write the metrics as TensorBoard events into this folder
    wandb: str | None = None  # also log the metrics to this Weights & Biases project (wandb installed)
    overwrite: bool = False  # replace a finished run or checkpoints in OUT (voxlora.outputs)
    allow_other_base: bool = False  # apply --adapter made for another base (a warning instead of an error)
    codec: str | None = None  # csm-1b-mlx model: the sesame/csm-1b-layout folder giving codec and tokenizer

    # listening samples and the best checkpoint (voxlora.train.samples)
    sample_every: int = 0  # speak the sample texts into OUT/samples/step_NNNNNNN/ every N steps (0: never)
    sample_texts: str | None = (
        None  # a file, one text per line; None: the first texts of the val (else train) manifest
    )
    sample_max_seconds: float = 10.0  # longest sample clip
    keep_best: str | None = None  # val_loss | wer | speaker_sim: keep OUT/best/ at the best value so far
    auto: list = field(
        default_factory=list
    )  # the fields above chosen from the data (see train/data_defaults.py)

    # Higgs Audio v2 (other families ignore these)
    reference: str = "auto"  # auto: a same-speaker clip before each target (ChatML brings its own) | none
    text_loss: bool = False  # also train on the text head's loss (text_lm_head, loaded when asked)
    grad_checkpointing: bool | None = None  # recompute activations in backward; None: on over 2B parameters
    quantize: str | None = None  # 4bit: QLoRA, the frozen base in 4 bits (bitsandbytes, CUDA only)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# What a resumed run must share with the run that wrote the checkpoint (the rest may change).
RESUME_FIELDS = (
    "model", "lora", "full", "epochs", "max_steps", "batch_size", "grad_accum", "max_batch_frames", "lr",
    "warmup_steps", "lr_schedule", "optimizer", "weight_decay", "max_grad_norm", "seed",
    "decoder_frame_fraction", "default_speaker", "dtype", "save_mode", "backend",
)  # fmt: skip

CHOICES = {
    "backend": ("auto", "torch", "mlx"),
    "lr_schedule": ("cosine", "linear", "constant"),
    "optimizer": ("adamw", "adam", "sgd"),
    "dtype": ("auto", "fp32", "bf16", "fp16"),
    "device": ("auto", "cpu", "cuda", "mps"),
    "save_mode": ("lora", "full", "both"),
    "attention": ("sdpa", "eager", "flash_attention_2"),  # voxlora.backends.torch.attention.ATTENTION
}


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill what depends on other fields and refuse impossible combinations (one-line errors).

    >>> resolve(TrainConfig(model="m", manifest="t.jsonl", out="runs/a")).lr
    0.0005
    """
    c = dataclasses.replace(config)
    from voxlora.train.data_defaults import STATIC

    for name, value in STATIC.items():  # placeholders until the data is known (`data_defaults.choose`)
        if getattr(c, name) is None:
            setattr(c, name, value)
            c.auto = [*c.auto, name]
    if c.lr is None:
        c.lr = FULL_LR if c.full else LORA_LR
    if not (isinstance(c.lr, int | float) and math.isfinite(c.lr) and c.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {c.lr}")
    if c.backend == "auto":
        from voxlora.backends import default_backend

        c.backend = default_backend()
    if c.dtype == "auto":
        c.dtype = "bf16" if c.backend == "torch" and _on_cuda(c.device) else "fp32"
    if c.cache_dir is None:
        c.cache_dir = str(Path(c.out).resolve().parent / CACHE_NAME)
    for name, choices in CHOICES.items():
        if name == "device" and re.fullmatch(r"cuda:\d+", str(c.device)):  # one GPU of several
            continue
        if getattr(c, name) not in choices:
            raise UsageError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}")
    positive = {
        "epochs": c.epochs,
        "batch_size": c.batch_size,
        "grad_accum": c.grad_accum,
        "log_every": c.log_every,
    }
    for name, value in positive.items():
        if value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("max_steps", "max_batch_frames", "keep_last"):
        value = getattr(c, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 0 < c.decoder_frame_fraction <= 1:
        raise UsageError(f"--decoder-frame-fraction must be in (0, 1], got {c.decoder_frame_fraction}")
    if c.full and c.adapter:
        raise UsageError("--full trains the whole model; it cannot start from --adapter")
    if c.full and c.save_mode != "lora":
        raise UsageError("--save-mode is for adapters; --full always saves the whole model")
    if c.backend == "mlx" and c.full:
        raise VoxloraError(
            "--full is not available with --backend mlx; train an adapter, or use --backend torch"
        )
    if c.backend == "mlx" and c.compile:
        raise UsageError("--compile is torch.compile: for --backend torch (MLX compiles nothing here yet)")
    if c.backend == "mlx" and c.grad_checkpointing:
        raise VoxloraError("--grad-checkpointing is for --backend torch")
    if c.backend == "mlx" and c.dtype == "fp16":
        raise VoxloraError("--dtype fp16 needs torch's loss scaling; with --backend mlx use bf16 or fp32")
    if c.val_every and not c.val_manifest:
        raise UsageError("--val-every needs --val-manifest")
    if c.warmup_steps < 0 or c.weight_decay < 0 or c.val_every < 0 or c.save_every < 0 or c.save_minutes < 0:
        raise UsageError(
            "--warmup-steps, --weight-decay, --val-every, --save-every and --save-minutes cannot be negative"
        )
    if not 0 <= c.warmup_fraction < 1:
        raise UsageError(f"--warmup-fraction must be in [0, 1), got {c.warmup_fraction}")
    check_samples(c)
    return c


def options_from_file(data: dict, path: str) -> dict:
    """A ``--config`` file's mapping as lora-train's options; a run record is replayed as it ran.

    Accepts plain option names (``max_steps: 500``, ``rank: 16``) and lora-train's own
    ``OUT/voxlora-train.json`` (``{"config": TrainConfig, "data": ...}``): its ``out`` is ``output``,
    its ``lora`` settings the LoRA options, and what lora-train derives itself (``processes``) is
    dropped, so ``lora-train --config OUT/voxlora-train.json`` trains the same run again.
    """
    from voxlora.lora_options import FLAGS

    if isinstance(data.get("config"), dict) and "data" in data:  # voxlora-train.json
        data = data["config"]
    data = dict(data)
    data.pop("processes", None)  # how many processes the run started on: lora-train's own record
    for name in data.pop("auto", None) or []:  # chosen from the data: the same data chooses them again
        data.pop(name, None)
    if "out" in data:
        data["output"] = data.pop("out")
    lora = data.pop("lora", None)
    if isinstance(lora, dict):
        lora = {k: v for k, v in lora.items() if not (k == "family" and v is None)}
        if set(lora) - set(FLAGS) - {"family"}:
            unknown = sorted(set(lora) - set(FLAGS) - {"family"})
            raise VoxloraError(f"{path}: unknown key 'lora.{unknown[0]}' (not a LoRA option)")
        lora.pop("family", None)  # recognised from the model's config.json again
        if not data.get("adapter"):  # with --adapter, the adapter's own settings were recorded
            data = {**lora, **data}
    elif lora is not None:
        raise VoxloraError(f"{path}: 'lora' must be a mapping of LoRA options, got {lora!r}")
    if "max_grad_norm" in data and data["max_grad_norm"] is None:
        data["max_grad_norm"] = 0  # no clipping, as --max-grad-norm 0 says it
    return {k: v for k, v in data.items() if v is not None}


def _on_cuda(device: str) -> bool:
    """Whether ``--device`` puts the torch backend on a CUDA GPU (auto: when one is there)."""
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def check_samples(c: TrainConfig) -> None:
    """--sample-every and --keep-best: what each needs (usage errors, before anything loads)."""
    if c.sample_every < 0:
        raise UsageError("--sample-every cannot be negative")
    if c.sample_every and c.full:
        raise UsageError("--sample-every speaks through the adapter being trained; not with --full")
    if c.sample_texts and not c.sample_every:
        raise UsageError("--sample-texts needs --sample-every N")
    if c.keep_best is None:
        return
    if c.keep_best not in ("val_loss", "wer", "speaker_sim"):
        raise UsageError(f"--keep-best must be one of val_loss, wer, speaker_sim, got {c.keep_best}")
    if c.full:
        raise UsageError("--keep-best keeps an adapter; not with --full")
    if c.keep_best == "val_loss" and not c.val_manifest:
        raise UsageError("--keep-best val_loss needs --val-manifest (and --val-every N)")
    if c.keep_best != "val_loss":
        from voxlora.train.samples import eval_extras_installed

        if not c.sample_every:
            raise UsageError(f"--keep-best {c.keep_best} needs --sample-every N (it scores the samples)")
        if not eval_extras_installed():
            raise VoxloraError(f'--keep-best {c.keep_best} scores the samples: pip install "voxlora[eval]"')
