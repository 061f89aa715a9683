"""The run's record: ``OUT/metrics.jsonl`` (the same lines as stdout) and ``OUT/loss.png``.

Train lines carry ``step, epoch, loss, backbone_loss, decoder_loss, lr, grad_norm, frames_per_s,
audio_s_per_s, pad_fraction`` (the share of the batches' positions that were padding); validation lines ``step, val_loss, val_backbone_loss, val_decoder_loss``; sample
lines (``--sample-every``) ``step, samples, wer, speaker_sim``, plotted in a second panel.
"""

import io
import json
from pathlib import Path

from voxlora.atomic import atomic_write_bytes, atomic_write_text, writing

METRICS = "metrics.jsonl"
PLOT = "loss.png"


class MetricsFile:
    """Append-only JSONL, flushed per line, so a killed run keeps every line it printed.

    Resuming keeps the lines up to the checkpoint's step: they replace the file atomically before it
    is opened for appending, so a kill in between loses no history.
    """

    def __init__(self, path, keep_until_step: int | None = None):
        self.path = Path(path)
        self.kept = []  # resuming: the lines up to the checkpoint's step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep_until_step is not None and self.path.is_file():
            self.kept = [line for line in read_metrics(self.path) if line.get("step", 0) <= keep_until_step]
            atomic_write_text(self.path, "".join(_line(record) for record in self.kept))
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:
            self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        with writing(self.path):  # a full disk: one line naming the file, not an anonymous OSError
            self._f.write(_line(record))
            self._f.flush()

    def close(self) -> None:
        with writing(self.path):
            self._f.close()


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def read_metrics(path) -> list[dict]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
    return out


def plot_loss(records: list[dict], path) -> Path:
    """Train (and validation) loss against step, as a PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    scored = [r for r in records if r.get("wer") is not None or r.get("speaker_sim") is not None]
    fig = Figure(figsize=(7, 6.5 if scored else 4), dpi=100)
    ax = fig.add_subplot(2, 1, 1) if scored else fig.add_subplot()
    if scored:  # a second panel: the listening samples' scores (lora-train --sample-every)
        ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
        for key, label in (("wer", "samples' WER"), ("speaker_sim", "samples' speaker similarity")):
            points = [(r["step"], r[key]) for r in scored if r.get(key) is not None]
            if points:
                ax2.plot(*zip(*points, strict=True), "o-", label=label)
        ax2.set_xlabel("step")
        ax2.set_ylabel("score (0..1)")
        ax2.grid(alpha=0.3)
        ax2.legend()
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (backbone + depth decoder)")
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
