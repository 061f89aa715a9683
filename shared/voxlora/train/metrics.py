"""The run's record: ``OUT/metrics.jsonl`` (the same lines as stdout) and ``OUT/loss.png``.

Train lines carry ``step, epoch, loss, backbone_loss, decoder_loss, lr, grad_norm, frames_per_s,
audio_s_per_s``; validation lines ``step, val_loss, val_backbone_loss, val_decoder_loss``.
"""

import io
import json
from pathlib import Path

from voxlora.atomic import atomic_write_bytes

METRICS = "metrics.jsonl"
PLOT = "loss.png"


class MetricsFile:
    """Append-only JSONL, flushed per line, so a killed run keeps every line it printed."""

    def __init__(self, path, keep_until_step: int | None = None):
        self.path = Path(path)
        self.kept = []  # resuming: the lines up to the checkpoint's step, written again
        if keep_until_step is not None and self.path.is_file():
            self.kept = [line for line in read_metrics(self.path) if line.get("step", 0) <= keep_until_step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        for record in self.kept:
            self.write(record)

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


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

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
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
