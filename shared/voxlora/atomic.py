"""Atomic outputs: a killed command never leaves a half-written file that looks whole.

Everything is written under a temporary name in the destination's folder, flushed and fsynced,
then renamed over the destination (rename is atomic within one filesystem). A kill leaves only
hidden names beside the destination, which `recover` tidies up:

    .NAME.XXXXXXXX.tmp   a file or folder being written (`atomic_file`, `atomic_dir`): removed
    .NAME.old-PID        the previous folder NAME, moved aside by `atomic_dir` while the new one is
                         renamed in: removed if NAME exists, renamed back to NAME if it does not

A full disk (or a quota, or a file size limit) while writing is raised as an ``OSError`` naming the
destination, whatever the writer raised (`writing`): Python's writes name no file, shutil.copyfile
names its source, safetensors raises its own ``SafetensorError``. The commands show it as one line,
``Error: runs/a/adapter: No space left on device``.
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]+\.tmp$")  # tempfile's random part, then .tmp
MOVED_ASIDE = re.compile(r"^\.(?P<name>.+)\.old-\d+$")
SPACE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # the output does not fit
# safetensors' Rust writer: "Error while serializing: I/O error: No space left on device (os error 28)"
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
log = logging.getLogger("voxlora")


def space_error(e: BaseException, path) -> OSError | None:
    """``e`` as ``OSError(ENOSPC, "No space left on device", path)`` when it says the output does not
    fit (full disk, quota, file size limit), else None.

    >>> e = space_error(OSError(28, "No space left on device", "src.bin"), "out/a.wav")
    >>> e.filename, e.strerror
    ('out/a.wav', 'No space left on device')
    >>> space_error(PermissionError(13, "Permission denied", "src.bin"), "out/a.wav") is None
    True
    """
    code = e.errno if isinstance(e, OSError) else None
    if code is None and type(e).__name__ == "SafetensorError":
        found = _RUST_OS_ERROR.search(str(e))
        code = int(found[1]) if found else None
    if code not in SPACE_ERRORS:
        return None
    return OSError(code, os.strerror(code), str(path))


@contextlib.contextmanager
def writing(path):
    """Raise a full disk met in the block as an ``OSError`` naming ``path`` (see `space_error`)."""
    try:
        yield
    except Exception as e:
        named = space_error(e, path)
        if named is None:
            raise
        raise named from e


def umask() -> int:
    """The process's umask: from /proc where there is one (no window where it differs), else set back."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to open folders
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", **open_kwargs):
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it vanishes.

    >>> with atomic_file("out.json", "w") as f:   # doctest: +SKIP
    ...     f.write("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; the file gets what open() would give
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if (named := space_error(e, path)) is not None:
            raise named from e
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_file(path, "wb") as f:
        f.write(data)


def atomic_write_text(path, text: str) -> None:
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; on success it becomes ``path`` (replacing an old one).

    Used for adapters, checkpoints and merged models: the folder is complete or absent. Replacing
    takes two renames (``path`` to ``.NAME.old-PID``, then the new folder to ``path``); a kill
    between them leaves no ``path`` but the old one aside, and `recover` renames it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; the folder gets what mkdir would give
        yield tmp
        mask = umask()
        for child in tmp.rglob("*"):
            if child.is_file():
                os.chmod(child, 0o666 & ~mask)  # some writers (safetensors) make 0600 whatever the umask
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
            elif child.is_dir():
                os.chmod(child, 0o777 & ~mask)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if (named := space_error(e, path)) is not None:
            raise named from e
        raise


def recover(folder) -> list[Path]:
    """Undo what killed `atomic_file` / `atomic_dir` calls left in ``folder``; returns what was removed.

    A moved-aside folder whose NAME is missing (the kill fell between `atomic_dir`'s two renames) is
    renamed back to NAME, so the previous version is restored, never lost with the new one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        aside = MOVED_ASIDE.match(p.name)
        if aside and not (folder / aside["name"]).exists():
            os.replace(p, folder / aside["name"])
            log.info("restored %s (a kill cut its replacement short)", folder / aside["name"])
        elif aside or TEMPORARY.match(p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    _fsync_dir(folder)
    return removed
