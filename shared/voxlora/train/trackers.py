"""Metrics into the tools people watch: TensorBoard (``--tensorboard DIR``) and Weights & Biases
(``--wandb PROJECT``). The JSONL on stdout and ``OUT/metrics.jsonl`` stay the source of truth;
these only mirror it.

Every number of a metrics record becomes a scalar at its ``step``, under a group by kind::

    train/loss train/backbone_loss train/decoder_loss train/lr train/grad_norm train/frames_per_s ...
    val/val_loss val/val_backbone_loss ...      (validation lines)
    eval/<score>                                (evaluation scores, when a record carries them)

`Trackers.audio` adds a WAV file as an audio summary at a step; the samples ``--sample-every``
speaks (a line ``{"step", "samples": folder, "wer", ...}``) go in as ``samples/01``, ``samples/02``.
TensorBoard events are written with ``torch.utils.tensorboard`` (needs the ``tensorboard``
package: ``pip install 'voxlora[track]'``); wandb is imported only when asked for. Either one
missing is one line before training starts: ``--wandb: wandb is not installed (pip install wandb)``.
"""

import logging
import math

from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora")
SKIP = {"step", "epoch"}  # the x axis, and epoch (a fraction of the run, not a metric)


def group(record: dict) -> str:
    """Which chart group a record's numbers belong to.

    >>> group({"step": 1, "loss": 2.0}), group({"step": 1, "val_loss": 2.0}), group({"step": 1, "mcd": 3})
    ('train', 'val', 'eval')
    """
    if "loss" in record:
        return "train"
    if any(k.startswith("val_") for k in record):
        return "val"
    return "eval"


def scalars(record: dict) -> dict[str, float]:
    """``{"train/loss": 2.0, ...}``: the finite numbers of a metrics record, by chart name."""
    kind = group(record)
    out = {}
    for key, value in record.items():
        if key in SKIP or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[f"{kind}/{key}"] = float(value)
    return out


class Trackers:
    """Zero, one or both of TensorBoard and wandb, fed the same records."""

    def __init__(
        self, tensorboard: str | None = None, wandb_project: str | None = None, config: dict | None = None
    ):
        self.writer = self.run = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise VoxloraError(
                    "--tensorboard: the tensorboard package is not installed (pip install tensorboard)"
                ) from None
            self.writer = SummaryWriter(log_dir=str(tensorboard))
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise VoxloraError("--wandb: wandb is not installed (pip install wandb)") from None
            self.run = wandb.init(project=wandb_project, config=config or {})

    def log(self, record: dict) -> None:
        """One metrics record (the lines lora-train prints); records without ``step`` are ignored."""
        step = record.get("step")
        if not isinstance(step, int) or "adapter" in record or "model" in record:
            return
        values = scalars(record)
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)
            self.writer.flush()
        if self.run is not None and values:
            self.run.log(values, step=step)
        folder = record.get("samples")  # --sample-every's line: the folder of the step's WAVs
        if isinstance(folder, str) and (self.writer is not None or self.run is not None):
            from pathlib import Path

            for wav in sorted(Path(folder).glob("*.wav")):
                self.audio(f"samples/{wav.stem}", step, wav)

    def audio(self, tag: str, step: int, wav_path) -> None:
        """A WAV file (mono or the first channel) as an audio sample at ``step``."""
        import numpy as np
        import soundfile as sf

        x, sr = sf.read(str(wav_path), dtype="float32", always_2d=True)
        x = np.ascontiguousarray(x[:, 0])
        if self.writer is not None:
            import torch

            self.writer.add_audio(tag, torch.from_numpy(x), step, sample_rate=sr)
            self.writer.flush()
        if self.run is not None:
            import wandb

            self.run.log({tag: wandb.Audio(x, sample_rate=sr)}, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.run is not None:
            self.run.finish()
