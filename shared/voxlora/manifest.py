"""The manifest: one clip per JSONL line, the file every voxlora data and training tool reads.

A record::

    {"audio": "clips/0001.wav", "text": "Hello there.", "speaker": 0, "duration": 1.92, "sample_rate": 24000}

``audio`` (a path) and ``text`` (non-empty) are required; ``speaker`` (int >= 0), ``duration``
(seconds), ``sample_rate`` (Hz) and ``dataset_id`` (int, VoxCPM's multi-dataset field) are optional
and type-checked; any other key passes through unchanged so tools chain. A relative ``audio`` path
is relative to the manifest's folder (to the current folder for stdin); readers here return it
resolved to an absolute path.

Two ways to read:

- `iter_manifest(path_or_dash)` is lazy and never stops on a bad line: it yields an `Entry` per
  non-blank line, holding either the checked ``record`` or the ``error`` (a `Rejected` whose message
  starts ``file:line:``), plus the ``original`` for a rejects file. mkmanifest uses it.
- `read_manifest(path_or_dash, strict=False)` reads it all: ``(records, errors)``; with
  ``strict=True`` the first bad line raises instead. The trainer uses it.
"""

import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voxlora.atomic import atomic_file
from voxlora.errors import VoxloraError
from voxlora.errors import where as _where
from voxlora.rejects import Rejected

OPTIONAL_INTS = ("speaker", "sample_rate", "dataset_id")
STDIN = "<stdin>"


@dataclass
class Entry:
    """One input item: ``record`` when it is usable, else ``error``; ``original`` is what was read."""

    where: str  # "train.jsonl:3", "clips/a.wav", "data.json[2]": the prefix of every message about it
    record: dict | None = None
    error: Rejected | None = None
    original: object = None  # the record as read (a dict), or the raw line when it was not one


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "null"
    )


def check_record(obj, where: str = "") -> dict:
    """Check one parsed JSON value is a usable record; returns it (a shallow copy) or raises `Rejected`.

    >>> check_record({"audio": "a.wav", "text": "Hi", "speaker": "x"}, "m.jsonl:2")
    Traceback (most recent call last):
    ...
    voxlora.rejects.Rejected: m.jsonl:2: "speaker" must be an integer, not a string
    """
    pre = f"{where}: " if where else ""
    if not isinstance(obj, dict):
        raise Rejected("bad-record", f"{pre}not a JSON object (got {_kind_of(obj)})")
    if "audio" not in obj or obj["audio"] is None:
        raise Rejected("bad-record", f'{pre}missing "audio"')
    if not isinstance(obj["audio"], str) or not obj["audio"].strip():
        raise Rejected(
            "bad-record", f'{pre}"audio" must be a non-empty string (a path), not {_kind_of(obj["audio"])}'
        )
    if "text" not in obj or obj["text"] is None:
        raise Rejected("no-text", f'{pre}missing "text"')
    if not isinstance(obj["text"], str):
        raise Rejected("bad-record", f'{pre}"text" must be a string, not {_kind_of(obj["text"])}')
    if not obj["text"].strip():
        raise Rejected("no-text", f'{pre}empty "text"')
    for key in OPTIONAL_INTS:
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise Rejected("bad-record", f'{pre}"{key}" must be an integer, not {_kind_of(value)}')
        if value < 0 or (key == "sample_rate" and value == 0):
            raise Rejected(
                "bad-record", f'{pre}"{key}" must be {"> 0" if key == "sample_rate" else ">= 0"}, not {value}'
            )
    value = obj.get("duration")
    if value is not None and (
        not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0
    ):
        raise Rejected("bad-record", f'{pre}"duration" must be a number of seconds >= 0, not {value!r}')
    return dict(obj)


def resolve_audio(audio: str, base_dir) -> str:
    """An absolute path for ``audio``: relative paths are relative to ``base_dir`` (the manifest's folder)."""
    path = Path(os.path.expanduser(audio))
    return os.path.abspath(path if path.is_absolute() else Path(base_dir) / path)


def display_path(path) -> str:
    """``path`` for messages: relative to the current folder when inside it, else absolute."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _lines(source):
    """(line_no, bytes) of a path or ``-``; read lazily, so `hf-fetch | mkmanifest -` streams."""
    if str(source) == "-":
        yield from enumerate(sys.stdin.buffer, start=1)
        return
    try:
        f = open(source, "rb")  # noqa: SIM115 - closed below; a generator cannot use `with` across yields cleanly
    except FileNotFoundError:
        raise VoxloraError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise VoxloraError(f"{source}: is a folder, not a manifest file") from None
    with f:
        yield from enumerate(f, start=1)


def decode_line(raw: bytes, where: str) -> str | Rejected:
    """One raw line as text, or a bad-encoding `Rejected` naming the first bad byte and its column.

    >>> str(decode_line(b"caf\\xe9\\n", "<stdin>:3"))
    '<stdin>:3: not UTF-8 (byte 0xe9 at column 4)'
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejected(
            "bad-encoding", f"{where}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})"
        )


def json_line(text: str, where: str):
    """The JSON value on one line, or a `Rejected` saying where and why it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        return Rejected("bad-json", f"{where}: invalid JSON ({e.msg}, column {e.colno})")


def iter_manifest(source, resolve: bool = True) -> Iterator[Entry]:
    """Yield an `Entry` per non-blank line of the JSONL manifest ``source`` (a path or ``-``).

    Bad lines come out as entries with ``error`` set; reading goes on. With ``resolve`` the
    record's ``audio`` is made absolute (see `resolve_audio`).
    """
    name = STDIN if str(source) == "-" else str(source)
    base = os.getcwd() if str(source) == "-" else os.path.dirname(os.path.abspath(source))
    for line_no, raw in _lines(source):
        where = _where(name, line_no)
        text = decode_line(raw, where)
        if isinstance(text, Rejected):
            yield Entry(where, error=text, original=raw.decode("utf-8", "replace").strip())
            continue
        if line_no == 1:
            text = text.lstrip("\ufeff")  # a BOM some editors write
        if not text.strip():
            continue
        obj = json_line(text, where)
        if isinstance(obj, Rejected):
            yield Entry(where, error=obj, original=text.strip())
            continue
        if isinstance(obj, dict) and "messages" in obj:  # a ChatML record (mkmanifest --to chatml)
            from voxlora.chatml import as_record

            obj = as_record(obj)
        try:
            record = check_record(obj, where)
        except Rejected as e:
            if (
                resolve
                and isinstance(obj, dict)
                and isinstance(obj.get("audio"), str)
                and obj["audio"].strip()
            ):
                obj = {
                    **obj,
                    "audio": resolve_audio(obj["audio"], base),
                }  # a rejects file works from anywhere
            yield Entry(where, error=e, original=obj)
            continue
        record.pop("reason", None)  # a fixed line fed back from a rejects file
        if resolve:
            record["audio"] = resolve_audio(record["audio"], base)
            if isinstance(record.get("reference"), dict) and isinstance(
                record["reference"].get("audio"), str
            ):
                record["reference"] = {
                    **record["reference"],
                    "audio": resolve_audio(record["reference"]["audio"], base),
                }
            if (
                isinstance(record.get("ref_audio"), str) and record["ref_audio"].strip()
            ):  # VoxCPM's prompt clip
                record["ref_audio"] = resolve_audio(record["ref_audio"], base)
        yield Entry(where, record=record, original=obj)


def read_manifest(source, strict: bool = False) -> tuple[list[dict], list[Rejected]]:
    """Read a whole manifest: (good records with absolute ``audio`` paths, errors of the bad lines).

    ``strict=True`` raises the first error instead (``Error: train.jsonl:17: missing "audio"``).
    Only the record is checked, not the audio file (mkmanifest checks audio).
    """
    records, errors = [], []
    for entry in iter_manifest(source):
        if entry.error is not None:
            if strict:
                raise entry.error
            errors.append(entry.error)
        else:
            records.append(entry.record)
    return records, errors


def write_record(stream, record: dict) -> None:
    """One JSON object per line, UTF-8 kept readable, flushed so a reader down a pipe sees it at once."""
    stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    stream.flush()


def write_manifest(path, records) -> None:
    """Write ``records`` as a JSONL manifest, atomically."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- the layouts other trainers read (mkmanifest --to) ---------------------------------------------
def to_voxcpm(record: dict) -> dict:
    """VoxCPM's fine-tuning manifest line: audio, text, duration (+ dataset_id)."""
    keys = ("audio", "text", "duration", "dataset_id")
    return {k: record[k] for k in keys if record.get(k) is not None}


def to_csm_mlx(record: dict) -> dict:
    """One item of csm-mlx's JSON list: text, audio_path, speaker_id (0 when unknown)."""
    return {"text": record["text"], "audio_path": record["audio"], "speaker_id": record.get("speaker", 0)}
