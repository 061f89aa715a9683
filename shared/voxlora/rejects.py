"""Why a clip or record was turned away, and the tally that closes every data run.

`Rejected` is a `VoxloraError` with a short ``kind`` used for counting ("silent", "duplicate", ...)
and a one-line message that starts with the file, or ``file:line``, it is about::

    train.jsonl:7: clips/a.wav: silent (peak below -80 dBFS)

`Tally` counts what a run kept and rejected, keeps each rejected input (the original record plus a
``reason`` key, so the user can fix it and feed it back) and writes them with `write_rejects`.

The kinds (README.md, section "mkmanifest", paragraph "Checked:", says what each means):
bad-json, bad-record, no-text, bad-encoding, missing-file, not-a-file, unreadable, corrupt, truncated,
empty, silent, nan, resample-failed, too-short, too-long, duplicate; from raw recordings
(``--segment``, ``--transcribe``) also no-speech and low-confidence.
"""

import json
from collections import Counter

from voxlora.atomic import atomic_write_text
from voxlora.errors import VoxloraError


class Rejected(VoxloraError):
    """One input that cannot be used, with a ``kind`` for counting."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # so a rejection crosses a process boundary (mkmanifest --jobs)
        return (Rejected, (self.kind, str(self)))

    def at(self, where: str) -> "Rejected":
        """The same rejection with ``where: `` in front (``train.jsonl:3: clips/a.wav: silent``)."""
        return Rejected(self.kind, f"{where}: {self}")


class Tally:
    """Kept clips and seconds, rejections by kind, and the rejected inputs for ``--rejects``."""

    def __init__(self):
        self.kept = 0
        self.seconds = 0.0
        self.by_kind: Counter = Counter()
        self.rejects: list[dict] = []

    def keep(self, duration: float | None) -> None:
        self.kept += 1
        self.seconds += duration or 0.0

    def reject(self, error: Rejected, original=None) -> None:
        """Count ``error``; remember ``original`` (a record, or a raw line) with the reason added."""
        self.by_kind[error.kind] += 1
        if isinstance(original, dict):
            entry = {k: v for k, v in original.items() if k != "reason"}
        else:
            entry = {"raw": original}
        entry["reason"] = str(error)
        self.rejects.append(entry)

    @property
    def rejected(self) -> int:
        return sum(self.by_kind.values())

    def summary(self) -> str:
        """``kept 18 clips (41.2 s); rejected 3: 2 silent, 1 duplicate``"""
        line = f"kept {self.kept} clip{'s' if self.kept != 1 else ''} ({self.seconds:.1f} s)"
        if not self.by_kind:
            return line + "; rejected 0"
        kinds = ", ".join(
            f"{n} {kind}" for kind, n in sorted(self.by_kind.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        return f"{line}; rejected {self.rejected}: {kinds}"

    def write_rejects(self, path) -> None:
        """The rejected inputs as JSONL (one per line, ``reason`` added), written atomically."""
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rejects))
