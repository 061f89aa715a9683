"""Per-system means of the clip scores, the table lora-eval prints on stderr, and its findings.

A "system" is what made a clip: ``real`` (the real recordings: the ceiling), ``base`` (the model
without adapter) or an adapter's path. Rows come in that order.
"""

import math

import numpy as np

from voxlora.errors import VoxloraError

REAL, BASE = "real", "base"


def system_of(record: dict) -> str:
    """The row a clip record belongs to: its "adapter" (null or "base" -> base)."""
    adapter = record.get("adapter")
    return BASE if adapter in (None, "", BASE) else str(adapter)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(float(np.mean(values)), 4) if values else None


def summarize(records: list[dict]) -> list[dict]:
    """One row per system: clips, mean wer/cer/speaker_sim/duration, share ended by itself and of sane length."""
    order = []
    for r in records:
        s = system_of(r)
        if s not in order:
            order.append(s)
    order.sort(key=lambda s: (s != REAL, s != BASE))  # real, base, then the adapters as they came
    rows = []
    for s in order:
        clips = [r for r in records if system_of(r) == s]
        generated = [r for r in clips if r.get("ended") is not None]
        rows.append(
            {
                "system": s,
                "clips": len(clips),
                "wer": _mean(r.get("wer") for r in clips),
                "cer": _mean(r.get("cer") for r in clips),
                "speaker_sim": _mean(r.get("speaker_sim") for r in clips),
                "duration": _mean(r.get("duration") for r in clips),
                "ended": _mean(float(r["ended"] == "eos") for r in generated) if generated else None,
                "length_ok": _mean(float(bool(r.get("length_ok"))) for r in clips),
            }
        )
    return rows


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


COLUMNS = (
    ("system", "system"),
    ("clips", "clips"),
    ("wer", "WER"),
    ("cer", "CER"),
    ("speaker_sim", "speaker sim"),
    ("duration", "seconds"),
    ("ended", "ended by itself"),
    ("length_ok", "sane length"),
)


def format_table(rows: list[dict]) -> str:
    """The summary as aligned plain text (lower WER and higher similarity are better)."""
    cells = [[h for _, h in COLUMNS]] + [[_cell(row[k]) for k, _ in COLUMNS] for row in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def identical_to_base(records: list[dict], waves: dict) -> list[str]:
    """Adapters every one of whose clips is sample-for-sample the base's at the same seed.

    ``waves``: (system, item) -> samples, for the clips made in this run.
    """
    found = []
    for s in {system_of(r) for r in records} - {REAL, BASE}:
        items = [item for (system, item) in waves if system == s]
        if items and all(
            (BASE, item) in waves and np.array_equal(waves[(s, item)], waves[(BASE, item)]) for item in items
        ):
            found.append(s)
    return sorted(found)


def zero_weights(adapter_path) -> bool:
    """True when the adapter cannot change the model: every LoRA B (or update) is zero, nothing trained directly."""
    from voxlora.adapter import read_adapter

    adapter = read_adapter(adapter_path)
    if adapter.trained:
        return False
    return all(float(B.abs().max()) == 0.0 or float(A.abs().max()) == 0.0 for A, B in adapter.lora.values())


def findings(records: list[dict], waves: dict, adapters) -> list[str]:
    """One line per adapter that has no effect (weights all zero, or clips identical to the base's)."""
    lines = []
    zero = set()
    for a in adapters:
        try:
            if zero_weights(a):
                zero.add(a)
                lines.append(
                    f"{a}: the adapter has no effect: its LoRA weights are all zero (B = 0: untrained?)"
                )
        except VoxloraError:  # an adapter format read_adapter does not know: no claim
            continue
    for a in identical_to_base(records, waves):
        if a not in zero:
            lines.append(
                f"{a}: the adapter has no effect: every clip is identical to the base's at the same seed"
            )
    return lines
