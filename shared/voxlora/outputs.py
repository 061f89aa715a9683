"""Where a command may write: one rule for every output folder and every single-file output.

Nothing a user owns is ever destroyed. Every command that writes a folder calls `check_dir` before
any long work (and before anything is written), and every single-file output calls `check_file`:

    check_dir(path, kind, inputs=(), overwrite=False, resume=False) -> Path
        Refuses, with one `VoxloraError` line, an output folder that
        - is an input (the base model's folder, an adapter, the audio folder read), lies inside one,
          or holds one;
        - exists, is not empty, and holds a file ``kind`` does not write, or was not written by
          this same command (no marker): the message names the first such file;
        - holds a trained run or checkpoints (``kind.precious``) and ``overwrite`` is False.
        An empty or missing folder is always fine. The folder is not created here.

    mark_dir(folder, kind, files=None)
        Writes ``kind``'s marker into ``folder`` (a command's temporary folder before the atomic
        swap, or its output folder): what recognises "written by this command" next time.

    made_dir(folder, kind)   (a context manager)
        Makes and marks ``folder`` for the block; a failure before anything else was written
        there removes what it made (hf-fetch offline leaves no empty folder).

    check_file(path, kind, inputs=(), overwrite=False) -> Path
        Refuses a single-file output that is an input, a folder, or an existing file not of its
        kind (a `.safetensors` where a WAV goes) unless ``overwrite``.

The kinds, one per command that writes a folder (`ADAPTER` lora-init, `TRAIN_RUN` lora-train,
`MERGED` lora-merge, `wav_folder("hf-fetch" | "mkmanifest" | "synth" | ...)`) and per file type
(`WAV_FILE`, `JSONL_FILE`, `JSON_FILE`). A later command (lora-eval) makes its own `DirKind`:

    EVAL = DirKind("lora-eval", marker=".voxlora-output.json", owns=("*.wav", "*.jsonl", ...))
    check_dir(out, EVAL, inputs=[model_folder, adapter], overwrite=overwrite)
    ...write into a temporary folder..., mark_dir(tmp, EVAL), swap (voxlora.atomic.atomic_dir)

Replacing never deletes first: the callers keep `voxlora.atomic`'s write-aside-then-rename, so a
refused or failed run leaves every pre-existing byte as it was.
"""

import contextlib
import fnmatch
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from voxlora.errors import VoxloraError

MARKER = ".voxlora-output.json"  # the marker of folders of plain outputs (WAVs, reports)
# Hidden scratch names voxlora's own writers leave after a kill (voxlora.atomic, lora-train).
_SCRATCH = re.compile(
    r"^\.(.+\.[a-z0-9_]+\.tmp|.+\.old-\d+|weights-\d+|write-test-\d+|previous-run-\d+|pruned-\d+)$"
)


@dataclass(frozen=True)
class DirKind:
    """What one command writes into an output folder, and how to recognise it.

    ``marker``: a file this command always writes; a folder without it was not written by it.
    ``owns``: glob patterns of the top-level names the command writes (files or folders).
    ``recognise``: reads the marker; returns True when this command wrote it (default: the
    marker's JSON ``tool`` is ``command``).
    ``precious``: a reason the folder needs ``--overwrite`` (a trained run, checkpoints), or None.
    """

    command: str
    marker: str = MARKER
    owns: tuple[str, ...] = ()
    recognise: Callable[[Path, "DirKind"], bool] | None = None
    precious: Callable[[Path], str | None] | None = None
    listed: bool = False  # the marker's "files" lists what it wrote (else ``owns`` decides)
    hint: str = "add --overwrite to replace it"  # what the user can do about a precious folder

    def wrote(self, folder: Path) -> bool:
        if not (folder / self.marker).is_file():
            return False
        if self.recognise is not None:
            return self.recognise(folder, self)
        return _marker_json(folder / self.marker).get("tool") == self.command

    def owned(self, folder: Path) -> Callable[[str], bool]:
        names = set()
        if self.listed:
            names = set(_marker_json(folder / self.marker).get("files") or ())
        return lambda name: (
            name == self.marker
            or name in names
            or _SCRATCH.match(name) is not None
            or any(fnmatch.fnmatchcase(name, p) for p in self.owns)
        )


def _marker_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _resolved(p) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(p)))).resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_not_input(path: Path, inputs: Iterable, what: str) -> None:
    out = _resolved(path)
    for given in inputs:
        if given is None:
            continue
        name, src = given if isinstance(given, tuple) else ("an input", given)
        src_path = _resolved(src)
        if out == src_path:
            raise VoxloraError(f"{path}: the {what} is {name} ({src}); choose another {what}")
        if _inside(out, src_path):
            raise VoxloraError(f"{path}: the {what} lies inside {name} ({src}); choose another {what}")
        if _inside(src_path, out):
            raise VoxloraError(f"{path}: the {what} holds {name} ({src}); choose another {what}")


def check_dir(
    path, kind: DirKind, inputs: Iterable = (), overwrite: bool = False, resume: bool = False
) -> Path:
    """Refuse an output folder this command must not replace or write into (see the module docstring).

    ``inputs``: paths, or ``(description, path)`` pairs such as ``("the base model", folder)``.
    ``resume``: the command continues what it wrote there (lora-train --resume): precious is fine.
    """
    path = Path(path)
    _check_not_input(path, inputs, "output folder")
    if not path.exists():
        return path
    if not path.is_dir():
        raise VoxloraError(f"{path}: exists and is not a folder; choose another output folder")
    entries = sorted(p.name for p in path.iterdir())
    visible = [n for n in entries if _SCRATCH.match(n) is None]
    if not visible:
        return path
    if not kind.wrote(path):
        raise VoxloraError(
            f"{path}: holds {path / visible[0]}, which {kind.command} did not write "
            f"(no {kind.marker} of {kind.command}); choose an empty or new folder"
        )
    owned = kind.owned(path)
    foreign = [n for n in visible if not owned(n)]
    if foreign:
        raise VoxloraError(
            f"{path}: holds {path / foreign[0]}, which {kind.command} did not write; "
            "it is never replaced: move it away or choose another folder"
        )
    reason = kind.precious(path) if kind.precious is not None and not resume else None
    if reason and not overwrite:
        raise VoxloraError(f"{path}: holds {reason}; {kind.hint}, or choose another output folder")
    return path


def mark_dir(folder, kind: DirKind, files: Iterable[str] | None = None, **info) -> Path:
    """Write ``kind``'s marker into ``folder``: ``{"tool": command, ...}`` (and ``files`` when listed)."""
    from voxlora.atomic import atomic_write_text

    folder = Path(folder)
    record = {"tool": kind.command, **info}
    if kind.listed:
        names = files if files is not None else (p.name for p in folder.iterdir())
        record["files"] = sorted(n for n in names if n != kind.marker)
    atomic_write_text(folder / kind.marker, json.dumps(record, indent=1) + "\n")
    return folder / kind.marker


@contextlib.contextmanager
def made_dir(folder, kind: DirKind, **info):
    """``folder`` made (with its parents) and marked as ``kind``'s for the ``with`` block.

    A command that fails before it wrote anything there (hf-fetch offline, no usable clip) leaves
    nothing it made: when the folder holds only a marker this call wrote, the marker goes, and so
    does every folder this call created. A folder that held anything before is left as it was.
    """
    folder = Path(folder).absolute()
    made = next((p for p in [*reversed(folder.parents), folder] if not p.exists()), None)
    marked = (folder / kind.marker).exists()
    folder.mkdir(parents=True, exist_ok=True)
    marker = mark_dir(folder, kind, **info)
    try:
        yield folder
    except BaseException:
        if not marked and [p.name for p in folder.iterdir()] == [kind.marker]:
            marker.unlink(missing_ok=True)
            for p in [folder, *folder.parents] if made is not None else ():  # up to the first one made here
                with contextlib.suppress(OSError):
                    p.rmdir()
                if p == made:
                    break
        raise


# --- the folder kinds -------------------------------------------------------------------------

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "voxlora.json")


def _adapter_tool(folder: Path) -> str | None:
    return (_marker_json(folder / "voxlora.json").get("created_with") or {}).get("tool")


def _trained_adapter(folder: Path) -> str | None:
    tool = _adapter_tool(folder)
    return None if tool == "lora-init" else f"an adapter written by {tool or 'another tool'} (trained)"


def _train_run(folder: Path) -> str | None:
    steps = sorted(p.name for p in folder.glob("step_*") if p.is_dir())
    if steps:
        return f"checkpoints of an earlier run ({steps[-1]}/)"
    return "an earlier training run"


# lora-init: a fresh adapter; another lora-init adapter is replaced, a trained one only with --overwrite.
ADAPTER = DirKind(
    "lora-init",
    marker="voxlora.json",
    owns=ADAPTER_FILES,
    recognise=lambda folder, kind: True,  # any voxlora adapter; a trained one is precious
    precious=_trained_adapter,
)
# lora-train: the adapter (or with --full a whole model), metrics, plot, settings and checkpoints.
TRAIN_RUN = DirKind(
    "lora-train",
    marker="voxlora-train.json",
    owns=(
        *ADAPTER_FILES,
        "metrics.jsonl",
        "loss.png",
        "step_*",
        "samples",  # --sample-every
        "best",  # --keep-best
        "merged",
        "*.safetensors",
        "model.safetensors.index.json",
        "*.json",
        "*.jinja",
        "*.txt",
        "*.model",
    ),
    recognise=lambda folder, kind: True,
    precious=_train_run,
    hint="add --resume to continue it, --overwrite to replace it",
)
# lora-merge: a model folder in the base's layout; the marker lists the files it wrote.
MERGED = DirKind("lora-merge", marker="voxlora-merge.json", listed=True, recognise=lambda folder, kind: True)


def wav_folder(command: str) -> DirKind:
    """A folder of WAVs a command writes (hf-fetch, mkmanifest --out-dir, synth --out-dir)."""
    return DirKind(command, owns=("*.wav", ".hf-fetch.jsonl", ".mkmanifest.jsonl"))  # + their resume journals


# --- single files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileKind:
    name: str  # "a WAV file"
    looks_like: Callable[[bytes], bool]  # the first bytes of an existing file


def _is_wav(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _is_jsonl(head: bytes) -> bool:
    if not head.strip():
        return True
    if b"\0" in head:
        return False
    first = head.lstrip().split(b"\n", 1)[0]
    return first.startswith(b"{")


def _is_json(head: bytes) -> bool:
    return not head.strip() or (b"\0" not in head and head.lstrip()[:1] in (b"{", b"["))


WAV_FILE = FileKind("a WAV file", _is_wav)
JSONL_FILE = FileKind("a JSONL file", _is_jsonl)
JSON_FILE = FileKind("a JSON file", _is_json)


def check_file(path, kind: FileKind, inputs: Iterable = (), overwrite: bool = False) -> Path:
    """Refuse a single-file output that is an input, a folder, or a file not of its kind.

    An input is never replaced, even with ``overwrite`` (it is read while the output is written).
    """
    path = Path(path)
    out = _resolved(path)
    for given in inputs:
        if given is None:
            continue
        name, src = given if isinstance(given, tuple) else ("an input", given)
        if out == _resolved(src):
            raise VoxloraError(f"{path}: the output file is {name} ({src}); choose another file name")
    if path.is_dir():
        raise VoxloraError(f"{path}: is a folder, not a file")
    if path.exists() and not overwrite:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError as e:
            raise VoxloraError(f"{path}: cannot be replaced ({e.strerror or e})") from None
        if not kind.looks_like(head):
            raise VoxloraError(f"{path}: exists and is not {kind.name}; add --overwrite to replace it")
    return path
