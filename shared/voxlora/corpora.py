"""Transcribed audio on disk, in the layouts real corpora use, read as manifest entries.

`iter_source(path)` reads anything mkmanifest accepts and yields `manifest.Entry` items in a fixed
order (folders are walked sorted), each with a record ``{"audio": <absolute path>, "text": ...}``
(+ ``speaker_name`` where the layout names speakers) or a `Rejected` error saying why not:

    -, *.jsonl       a JSONL manifest (see manifest.py)
    *.json           a csm-mlx list: [{"text": ..., "audio_path": ..., "speaker_id": 0}, ...]
    *.tsv            Common Voice: columns path, sentence, client_id; audio in clips/ beside it
    metadata.csv     LJSpeech ("id|text|normalized text", no header; audio in wavs/), or
                     Hugging Face audiofolder (comma CSV with a header holding file_name)
    a folder         one of the above inside it (validated.tsv, then train.tsv, for Common Voice),
                     else every audio file under it (wav, flac, ogg, opus, mp3, m4a, aac) with a transcript
                     beside it: X.normalized.txt, else X.original.txt, X.txt, X.lab (LibriTTS and
                     most home-made sets). LibriTTS names files <speaker>_<chapter>_..., so a file
                     name starting with two numbers gives its speaker.

Only the text side is read here; the audio is checked later (mkmanifest's workers), so a record
whose file is missing still comes out and is rejected there with the file's path.
"""

import csv
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from voxlora.columns import pick_columns, speaker_of, text_of
from voxlora.errors import VoxloraError
from voxlora.manifest import (
    Entry,
    check_record,
    decode_line,
    display_path,
    iter_manifest,
    json_line,
    resolve_audio,
)
from voxlora.rejects import Rejected

log = logging.getLogger("voxlora.corpora")

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac")
SIDECAR_SUFFIXES = (".normalized.txt", ".original.txt", ".txt", ".lab")
COMMON_VOICE_TSVS = ("validated.tsv", "train.tsv")
_LIBRITTS_NAME = re.compile(r"^(\d+)_(\d+)_")
T = TypeVar("T")


def iter_source(path) -> Iterator[Entry]:
    """Entries of ``path`` (``-``, a file or a folder; see the module docstring)."""
    if str(path) == "-":
        return iter_manifest("-")
    p = Path(path)
    if p.is_dir():
        return iter_folder(p)
    if not p.exists():
        raise VoxloraError(f"{path}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix == ".tsv":
        return iter_common_voice(p)
    if suffix == ".csv":
        return iter_audiofolder_csv(p) if _is_audiofolder_csv(p) else iter_ljspeech(p)
    if suffix == ".json" and _first_char(p) == "[":
        return iter_csm_mlx(p)
    return iter_manifest(p)


def detect_layout(folder) -> tuple[str, Path]:
    """(layout name, the file or folder to read): how `iter_folder` reads ``folder``."""
    folder = Path(folder)
    if (folder / "metadata.csv").is_file():
        csv_path = folder / "metadata.csv"
        return ("audiofolder" if _is_audiofolder_csv(csv_path) else "ljspeech"), csv_path
    if (folder / "metadata.jsonl").is_file():
        return "audiofolder", folder / "metadata.jsonl"
    for name in COMMON_VOICE_TSVS:
        if (folder / name).is_file():
            return "commonvoice", folder / name
    lists = [p for p in sorted(folder.glob("*.json")) if _first_char(p) == "["]
    if len(lists) == 1:
        return "csm-mlx", lists[0]
    return "sidecar", folder


def iter_folder(folder) -> Iterator[Entry]:
    layout, target = detect_layout(folder)
    log.info(
        "%s: reading it as %s",
        display_path(folder),
        f"{layout} ({target.name})" if target != Path(folder) else layout,
    )
    readers = {"ljspeech": iter_ljspeech, "audiofolder": iter_audiofolder, "commonvoice": iter_common_voice}
    readers |= {"csm-mlx": iter_csm_mlx, "sidecar": iter_sidecars}
    return readers[layout](target)


def _first_char(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(512).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")[:1]


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        raise Rejected(
            "bad-encoding", f"{what} is not UTF-8 (byte {raw[e.start]:#04x} at position {e.start})"
        ) from None


def _lines(path: Path, as_read: bool = False) -> Iterator[tuple[int, str | Rejected]]:
    """(line_no, text or a bad-encoding `Rejected` starting ``file:line:``), decoded line by line.

    Blank lines are skipped and line ends cut; ``as_read=True`` hands on every line whole (for `csv`).
    """
    name = display_path(path)
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            text = decode_line(raw, f"{name}:{line_no}")
            if isinstance(text, str) and line_no == 1:
                text = text.lstrip("\ufeff")  # a BOM some editors write
            if as_read or isinstance(text, Rejected):
                yield line_no, text
            elif text.strip():
                yield line_no, text.rstrip("\r\n")


def _each_line(path: Path, parse: Callable[[str, str], T]) -> Iterator[T | Entry]:
    """``parse(where, text)`` of each non-blank line (``where``: "file:line"); a line that does not
    decode is an `Entry` with its error."""
    name = display_path(path)
    for line_no, text in _lines(path):
        where = f"{name}:{line_no}"
        yield Entry(where, error=text) if isinstance(text, Rejected) else parse(where, text)


# -- a folder of audio files with transcripts beside them (LibriTTS, home-made sets) ----------------
def _audio_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                yield Path(root) / name


def sidecar_text(audio: Path) -> str:
    """The transcript beside ``audio`` (X.normalized.txt, X.original.txt, X.txt, X.lab), or `Rejected`."""
    stem = audio.name[: -len(audio.suffix)]
    for suffix in SIDECAR_SUFFIXES:
        path = audio.parent / (stem + suffix)
        if path.is_file():
            text = _decode(path.read_bytes(), f"transcript {path.name}").strip()
            if not text:
                raise Rejected("no-text", f"empty transcript ({path.name})")
            return text
    raise Rejected("no-text", f"no transcript beside it ({stem}.normalized.txt, .original.txt, .txt or .lab)")


def iter_sidecars(folder) -> Iterator[Entry]:
    for path in _audio_files(Path(folder)):
        where = display_path(path)
        record = {"audio": os.path.abspath(path)}
        m = _LIBRITTS_NAME.match(path.name)
        if m:
            record["speaker_name"] = m.group(1)
        try:
            record = {"audio": record["audio"], "text": sidecar_text(path), **record}
        except Rejected as e:
            yield Entry(where, error=e.at(where), original=record)
            continue
        yield Entry(where, record=record, original=dict(record))


# -- LJSpeech: metadata.csv "id|text|normalized text", audio in wavs/ ------------------------------
def _ljspeech_audio(folder: Path, clip_id: str) -> str:
    candidates = [
        folder / "wavs" / f"{clip_id}.wav",
        folder / f"{clip_id}.wav",
        folder / "wavs" / clip_id,
        folder / clip_id,
    ]
    return os.path.abspath(next((c for c in candidates if c.is_file()), candidates[0]))


def iter_ljspeech(csv_path) -> Iterator[Entry]:
    csv_path = Path(csv_path)
    return _each_line(csv_path, lambda where, text: _ljspeech_entry(csv_path.parent, where, text))


def _ljspeech_entry(folder: Path, where: str, text: str) -> Entry:
    fields = text.split("|")
    if len(fields) < 2 or not fields[0].strip():
        return Entry(
            where,
            error=Rejected("bad-record", f'{where}: expected "id|text|normalized text"'),
            original=text,
        )
    transcript = (fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]).strip()
    record = {"audio": _ljspeech_audio(folder, fields[0].strip()), "text": transcript}
    if not transcript:
        return Entry(where, error=Rejected("no-text", f'{where}: empty "text"'), original=record)
    return Entry(where, record=record, original=dict(record))


# -- Common Voice: <split>.tsv with path, sentence, client_id; audio in clips/ ----------------------
def iter_common_voice(tsv) -> Iterator[Entry]:
    tsv = Path(tsv)
    name = display_path(tsv)
    clips = tsv.parent / "clips" if (tsv.parent / "clips").is_dir() else tsv.parent
    lines = _lines(tsv)
    _, header = next(lines, (0, ""))
    columns = header.split("\t") if isinstance(header, str) else []
    for needed in ("path", "sentence"):
        if needed not in columns:
            raise VoxloraError(f'{name}:1: not a Common Voice TSV (no "{needed}" column in the header)')
    for line_no, text in lines:
        where = f"{name}:{line_no}"
        if isinstance(text, Rejected):
            yield Entry(where, error=text)
            continue
        fields = text.split("\t")
        if len(fields) != len(columns):
            msg = f"{where}: expected {len(columns)} tab-separated fields, found {len(fields)}"
            yield Entry(where, error=Rejected("bad-record", msg), original=text)
            continue
        row = dict(zip(columns, fields, strict=True))
        record = {"audio": os.path.abspath(clips / row["path"]), "text": row["sentence"].strip()}
        if row.get("client_id", "").strip():
            record["speaker_name"] = row["client_id"].strip()
        if row.get("locale", "").strip():
            record["locale"] = row["locale"].strip()
        if not record["text"]:
            yield Entry(where, error=Rejected("no-text", f'{where}: empty "sentence"'), original=record)
            continue
        yield Entry(where, record=record, original=dict(record))


# -- Hugging Face audiofolder: metadata.csv / metadata.jsonl with a file_name column ---------------
def _is_audiofolder_csv(path: Path) -> bool:
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8", "replace").lstrip("\ufeff")
    return "file_name" in [c.strip() for c in first.split(",")]


def _audiofolder_entry(where: str, row: dict, folder: Path, names) -> Entry:
    columns = pick_columns(names, audio="file_name", what=where.rsplit(":", 1)[0])
    record = {"audio": resolve_audio(str(row.get("file_name") or ""), folder)}
    text = text_of(row, columns)
    speaker = speaker_of(row, columns)
    if speaker is not None:
        record["speaker_name"] = speaker
    if not row.get("file_name"):
        return Entry(where, error=Rejected("bad-record", f'{where}: empty "file_name"'), original=row)
    if text is None:
        return Entry(where, error=Rejected("no-text", f"{where}: empty transcript"), original=record)
    return Entry(where, record={"audio": record.pop("audio"), "text": text, **record}, original=row)


def iter_audiofolder_csv(csv_path) -> Iterator[Entry]:
    """The rows of an audiofolder metadata.csv; a line that is not UTF-8 is rejected on its own.

    Lines are decoded one by one and only good ones reach the `csv` reader, so one bad byte costs one
    row, not the rest of the file. A bad header line is the whole file's error (no row can be read).
    """
    csv_path = Path(csv_path)
    name = display_path(csv_path)
    bad: list[Entry] = []  # bad lines met while the reader pulled the next row, in file order
    last = [0]  # the file line the reader took last: where the row it returns ends

    def good_lines():
        for line_no, text in _lines(csv_path, as_read=True):
            if isinstance(text, Rejected):
                if last[0] == 0:  # the header: without its column names no row can be read
                    raise text
                bad.append(Entry(f"{name}:{line_no}", error=text))
                continue
            last[0] = line_no
            yield text

    reader = csv.DictReader(good_lines())
    for row in reader:
        yield from bad
        bad.clear()
        yield _audiofolder_entry(f"{name}:{last[0]}", row, csv_path.parent, reader.fieldnames)
    yield from bad


def iter_audiofolder(path) -> Iterator[Entry]:
    path = Path(path)
    if path.suffix == ".csv":
        yield from iter_audiofolder_csv(path)
        return
    for entry in _json_objects(path):
        if isinstance(entry, Entry):
            yield entry
        else:
            where, obj = entry
            yield _audiofolder_entry(where, obj, path.parent, list(obj))


def _json_objects(path: Path):
    """JSON objects of a JSONL file as (where, dict), or an `Entry` with the error for a bad line."""
    return _each_line(path, _json_object)


def _json_object(where: str, text: str):
    obj = json_line(text, where)
    if isinstance(obj, Rejected):
        return Entry(where, error=obj, original=text)
    if not isinstance(obj, dict):
        return Entry(where, error=Rejected("bad-record", f"{where}: not a JSON object"), original=obj)
    return where, obj


# -- csm-mlx: a JSON list of {"text", "audio_path", "speaker_id"} -----------------------------------
def iter_csm_mlx(json_path) -> Iterator[Entry]:
    json_path = Path(json_path)
    name = display_path(json_path)
    try:
        data = json.loads(json_path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise next(t for _, t in _lines(json_path) if isinstance(t, Rejected)) from None
    except json.JSONDecodeError as e:
        raise VoxloraError(f"{name}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise VoxloraError(f'{name}: expected a JSON list of {{"text", "audio_path", "speaker_id"}} objects')
    for i, item in enumerate(data):
        where = f"{name}[{i}]"
        if not isinstance(item, dict) or "audio_path" not in item:
            msg = "not a JSON object" if not isinstance(item, dict) else 'missing "audio_path"'
            yield Entry(where, error=Rejected("bad-record", f"{where}: {msg}"), original=item)
            continue
        rest = {k: v for k, v in item.items() if k not in ("audio_path", "text", "speaker_id")}
        record = {"audio": item["audio_path"], "text": item.get("text"), **rest}
        speaker = item.get("speaker_id")
        if isinstance(speaker, int) and not isinstance(speaker, bool):
            record["speaker"] = speaker
        elif speaker is not None:
            record["speaker_name"] = str(speaker)
        try:
            record = check_record(record, where)
        except Rejected as e:
            yield Entry(where, error=e, original=item)
            continue
        record["audio"] = resolve_audio(record["audio"], json_path.parent)
        yield Entry(where, record=record, original=item)
