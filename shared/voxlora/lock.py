"""One writer per output folder: an advisory lock file beside it, naming the holder's PID and host.

``with output_lock("runs/voice", "lora-train"):`` holds ``runs/.voice.lock`` for the command's life.
A second command on the same folder is refused at once with one line::

    Error: runs/voice: in use by lora-train (PID 4242 on gpu1, since 2026-11-30 19:02:11); wait for
    it to finish, or stop it

The lock is the kernel's ``flock`` on that file, so a run that is killed (even by SIGKILL) loses it
with its last breath, and its successor takes it over: the file then still names the dead holder,
which is reported as a stale lock taken over. The file lives beside the folder, not in it, so
folders that are replaced whole (lora-merge's output) or read whole (a clips folder) never hold it.

``lora-train --nproc N`` holds the lock while its N processes run; they know it from
``VOXLORA_LOCK_HOLDER`` (the launcher's PID) and do not lock again.
"""

import contextlib
import datetime
import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from voxlora.errors import VoxloraError

HOLDER_ENV = "VOXLORA_LOCK_HOLDER"  # set by a command that holds the lock for its child processes
log = logging.getLogger("voxlora")


class Locked(VoxloraError):
    """Another live process holds the output folder."""


def lock_path(folder) -> Path:
    """``runs/voice`` -> ``runs/.voice.lock``."""
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    who = holder.get("command") or "another command"
    return (
        f"{who} (PID {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')})"
    )


@contextlib.contextmanager
def output_lock(folder, command: str):
    """Hold ``folder``'s lock for the ``with`` block, or raise `Locked` naming the holder."""
    path = lock_path(folder)
    inherited = os.environ.get(HOLDER_ENV)
    if inherited and str(_read(path).get("pid")) == inherited:  # our launcher holds it for us
        yield path
        return
    made = next((p for p in reversed(path.parents) if not p.exists()), None)  # removed again if left empty
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a folder should be is "File exists" to mkdir: say what it is
        why = "Not a directory" if isinstance(e, FileExistsError) else e.strerror or e
        raise VoxloraError(f"{folder}: cannot write the output folder ({why})") from None
    fd = _acquire(path, folder)
    try:
        before = _read(path)
        if before.get("pid"):
            log.info("%s: took over the lock of %s, which is no longer running", folder, _describe(before))
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": datetime.datetime.now().isoformat(sep=" ", timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        os.fsync(fd)
        yield path
    finally:
        with contextlib.suppress(OSError):  # unlink while still holding it: no one is left holding a ghost
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                os.unlink(path)
        os.close(fd)
        for parent in path.parents if made is not None else ():  # made for the lock, left empty: removed
            with contextlib.suppress(OSError):
                parent.rmdir()
            if parent == made:
                break


@contextlib.contextmanager
def holding_for_children():
    """Child processes started in this block (torchrun's) know this process holds their lock."""
    before = os.environ.get(HOLDER_ENV)
    os.environ[HOLDER_ENV] = str(os.getpid())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HOLDER_ENV, None)
        else:
            os.environ[HOLDER_ENV] = before


def _acquire(path: Path, folder) -> int:
    """An fd of ``path`` holding its flock; the file is the one at ``path`` now (not an unlinked one)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise VoxloraError(f"{folder}: cannot write the output folder ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(path)
            os.close(fd)
            raise Locked(
                f"{folder}: in use by {_describe(holder)}; wait for it to finish, or stop it"
            ) from None
        except OSError as e:  # a file system without locks
            os.close(fd)
            raise VoxloraError(f"{path}: cannot lock ({e.strerror or e})") from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed it as we opened it: lock the new one
