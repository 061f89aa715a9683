"""A held-out validation set split by recording (``mkmanifest --val-fraction F`` / ``--val N``).

Clips cut from one recording share its voice, room and often its sentences: a validation clip
from a recording that also gave training clips measures memory, not generalisation. So whole
recordings are held out, never single clips. A clip's recording is ``source.file`` (what
`segment` writes), else its ``audio`` file itself.

Recordings are taken in an order fixed by a hash of their path (the same input gives the same
split on every run and machine) until the held-out clips reach the target: ``fraction`` of all
clips, or ``count`` clips. At least one recording always stays for training.

    train, val = split_by_recording(records, fraction=0.1)
"""

import hashlib

from voxlora.errors import VoxloraError


def recording_of(record: dict) -> str:
    """The recording a clip came from: ``source.file``, else its own ``audio`` path."""
    source = record.get("source")
    if isinstance(source, dict) and isinstance(source.get("file"), str):
        return source["file"]
    return record["audio"]


def split_by_recording(
    records: list[dict], fraction: float | None = None, count: int | None = None
) -> tuple[list[dict], list[dict]]:
    """(training records, validation records), both in input order; see the module docstring.

    >>> recs = [{"audio": f"r{i}.wav"} for i in range(10)]
    >>> train, val = split_by_recording(recs, fraction=0.2)
    >>> len(train), len(val), {r["audio"] for r in val} & {r["audio"] for r in train}
    (8, 2, set())
    """
    if (fraction is None) == (count is None):
        raise ValueError("give one of fraction or count")
    by_recording: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_recording.setdefault(recording_of(record), []).append(i)
    if len(by_recording) < 2:
        raise VoxloraError(
            f"a validation split by recording needs clips from at least two recordings; "
            f"all {len(records)} come from {next(iter(by_recording), 'none')}"
        )
    target = count if count is not None else max(1, round(fraction * len(records)))
    order = sorted(by_recording, key=lambda key: hashlib.sha256(key.encode()).hexdigest())
    held: set[int] = set()
    for key in order[:-1]:  # the last one always trains
        if len(held) >= target:
            break
        held.update(by_recording[key])
    train = [r for i, r in enumerate(records) if i not in held]
    val = [r for i, r in enumerate(records) if i in held]
    return train, val
