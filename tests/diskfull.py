"""A full disk, simulated in this process: the one fault injection every disk-full test uses.

    full_disk(monkeypatch, where=str(tmp_path / "out"), free=1000)

From then on, files whose path contains ``where`` share ``free`` bytes. A write past them stores
what still fits and fails the way the real writer fails on a full file system (measured on a 64 KiB
tmpfs: `tests/cron/test_disk_full_commands.py` compares the two where it can mount one):

- Python's files (``open``, ``Path.write_text``, ``os.fdopen``): a partial write, then
  ``OSError(ENOSPC)`` naming no file;
- ``os.sendfile`` / ``os.copy_file_range`` (shutil.copyfile, lora-merge's kernel copies): the same;
  shutil.copyfile then names its *source* file, as it does for real;
- ``safetensors.torch.save_file`` (its writer is Rust): ``SafetensorError("Error while serializing:
  I/O error: No space left on device (os error 28)")``, a partial file left behind.

Reads, and writes elsewhere (pytest's own files, the inputs), are untouched.
"""

import builtins
import errno
import io
import os
from pathlib import Path

_ENOSPC = errno.ENOSPC


class Disk:
    """The bytes left on the simulated file system, and which paths live on it."""

    def __init__(self, where: str, free: int):
        self.where, self.free, self.failures = where, free, 0

    def holds(self, file) -> bool:
        if isinstance(file, int):
            try:
                file = os.readlink(f"/proc/self/fd/{file}")
            except OSError:
                return False
        return isinstance(file, (str, os.PathLike)) and self.where in os.path.abspath(os.fspath(file))

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` bytes still fit (at least one); raises ENOSPC when none does."""
        if wanted and self.free <= 0:
            self.failures += 1
            raise OSError(_ENOSPC, os.strerror(_ENOSPC))
        granted = min(wanted, self.free)
        self.free -= granted
        return granted


class _FullRaw(io.RawIOBase):
    """A raw file on the simulated disk: writes take from its free bytes, the rest passes through."""

    def __init__(self, raw, disk: Disk):
        self.raw, self.disk = raw, disk
        self.name, self.mode = raw.name, raw.mode

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        return self.raw.write(view[: self.disk.take(len(view))])

    def readable(self):
        return self.raw.readable()

    def writable(self):
        return True

    def seekable(self):
        return self.raw.seekable()

    def readinto(self, b):
        return self.raw.readinto(b)

    def seek(self, pos, whence=0):
        return self.raw.seek(pos, whence)

    def tell(self):
        return self.raw.tell()

    def truncate(self, size=None):
        return self.raw.truncate(size)

    def fileno(self):
        return self.raw.fileno()

    def close(self):
        if not self.closed:
            self.raw.close()
        super().close()


def full_disk(monkeypatch, where, free: int = 0) -> Disk:
    """Simulate a file system holding ``where`` (a path, or any part of one) with ``free`` bytes left."""
    disk = Disk(str(where), free)
    real_open, real_sendfile, real_copy_range = io.open, os.sendfile, os.copy_file_range

    def full_open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,
                  opener=None):  # fmt: skip
        if not (set(mode) & set("wax+")) or not disk.holds(file):
            return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        raw = _FullRaw(real_open(file, mode.replace("t", "") + ("" if "b" in mode else "b"), 0,
                                 closefd=closefd, opener=opener), disk)  # fmt: skip
        if buffering == 0:
            return raw
        buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding or "utf-8", errors, newline, line_buffering=buffering == 1)

    def full_sendfile(out_fd, in_fd, offset, count):
        if disk.holds(out_fd):
            count = disk.take(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    def full_copy_range(src, dst, count, offset_src=None, offset_dst=None):
        if disk.holds(dst):
            count = disk.take(count)
        return real_copy_range(src, dst, count, offset_src, offset_dst)

    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(os, "sendfile", full_sendfile)
    monkeypatch.setattr(os, "copy_file_range", full_copy_range)
    _full_safetensors(monkeypatch, disk)
    return disk


def _full_safetensors(monkeypatch, disk: Disk) -> None:
    import safetensors.torch
    from safetensors import SafetensorError

    real = safetensors.torch.save_file

    def save_file(tensors, filename, metadata=None):
        if not disk.holds(filename):
            return real(tensors, filename, metadata=metadata)
        data = safetensors.torch.save(tensors, metadata=metadata)
        try:
            with open(filename, "wb") as f:  # the patched open: what fits is left behind, as Rust leaves it
                f.write(data)
        except OSError as e:
            raise SafetensorError(
                f"Error while serializing: I/O error: {os.strerror(e.errno)} (os error {e.errno})"
            ) from None

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


def leftovers(folder) -> list[str]:
    """Hidden scratch names (``.NAME.XXXX.tmp``, ``.NAME.old-PID``, ...) left anywhere under ``folder``."""
    return sorted(
        str(p.relative_to(folder)) for p in Path(folder).rglob(".*") if ".tmp" in p.name or ".old-" in p.name
    )


def failures(folder, source) -> list[tuple]:
    """How each writer voxlora uses fails writing into ``folder`` when it is full: one
    (writer, exception type, errno, file named, message) each, paths shown as <out> and <src>.

    ``source``: a file of at least 1 MiB outside ``folder`` (copied in by the copying writers).
    Run on a real full file system and on `full_disk`'s, the lists must be equal.
    """
    import shutil

    import numpy as np
    import safetensors.torch
    import torch
    from voxlora import audio
    from voxlora.safetensors_stream import Stored, write_streaming

    folder, source = Path(folder), Path(source)
    big = b"x" * (1 << 20)
    writers = {
        "open().write": lambda out: open(out, "wb").write(big),  # noqa: SIM115 - the close is the test
        "Path.write_text": lambda out: out.write_text(big.decode()),
        "shutil.copyfile": lambda out: shutil.copyfile(source, out),
        "safetensors save_file": lambda out: safetensors.torch.save_file({"w": torch.zeros(1 << 18)}, out),
        "write_streaming (kernel copy)": lambda out: write_streaming(
            out,
            {"w": (torch.uint8, (1 << 20,))},
            [("w", Stored(source, 0, 1 << 20, torch.uint8, (1 << 20,)))],
        ),
        "audio.write_wav": lambda out: audio.write_wav(out, np.zeros(1 << 19, dtype=np.float32), 24000),
    }
    seen = []
    for name, write in writers.items():
        out = folder / "out.bin"
        try:
            write(out)
            seen.append((name, "no error"))
        except Exception as e:  # noqa: BLE001 - what it raises is the finding
            show = lambda text: str(text).replace(str(source), "<src>").replace(str(folder), "<out>")  # noqa: E731
            seen.append((name, type(e).__name__, getattr(e, "errno", None), show(getattr(e, "filename", None)),
                         show(e)))  # fmt: skip
        for p in folder.iterdir():
            p.unlink()
    return seen
