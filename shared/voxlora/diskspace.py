"""Room on disk: refuse long work up front when its output cannot fit.

A checkpoint written into a full disk fails after hours of training; `require_room` turns that into
a one-line error before the first step, from an estimate of what will be written.
"""

import shutil
from pathlib import Path

from voxlora.errors import VoxloraError

MARGIN = 16 * 2**20  # JSON files, safetensors headers, filesystem blocks: room kept on top


def human(n: float) -> str:
    """Bytes for people.

    >>> human(1536), human(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def free_bytes(folder) -> int:
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:  # a folder not made yet: its filesystem
        folder = folder.parent
    return shutil.disk_usage(folder).free


def require_room(folder, needed: int, what: str) -> None:
    """Raise a `VoxloraError` when ``folder``'s filesystem has less than ``needed`` + MARGIN free."""
    free = free_bytes(folder)
    if free < needed + MARGIN:
        raise VoxloraError(
            f"{folder}: not enough free space for {what} (needs about {human(needed + MARGIN)}, "
            f"{human(free)} free)"
        )
