"""What synth is asked to say: one `Request` per clip, from the command line or from stdin lines.

A stdin line is either plain text (the whole line is said) or a JSONL record::

    {"text": "Hello.", "speaker": 1, "adapter": "runs/a1", "out": "gen/hello.wav", "seed": 7,
     "context": [{"audio": "ref.wav", "text": "What the reference says.", "speaker": 1}]}

Only ``text`` is required. A missing key takes the command line's value (``--speaker``,
``--adapter``, ``--context``, ``--seed``); ``"adapter": null`` or ``"base"`` asks for the plain base
model; without ``out`` the clip is ``--out-dir/0001.wav`` (numbered by line). Other keys pass
through to the output record unchanged, so tools chain. Blank lines are skipped. A bad line (not
UTF-8, bad JSON, a wrong value) comes out as the error ``<stdin>:LINE: what is wrong``: synth reports
it and speaks the rest (``--strict`` stops there).
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.errors import where as _where
from voxlora.manifest import decode_line

STDIN = "<stdin>"
BASE_NAMES = (None, "base")  # "adapter" values that mean the plain base model


@dataclass
class ContextClip:
    """A reference clip for voice cloning: ``audio`` (a path) saying ``text``, by ``speaker``."""

    audio: str
    text: str
    speaker: int | None = None  # None: the request's speaker


@dataclass
class Request:
    """One clip to make."""

    text: str
    out: Path
    speaker: int = 0
    adapter: str | None = None  # an adapter folder, or None for the plain base
    context: list[ContextClip] = field(default_factory=list)
    seed: int = 0
    record: dict = field(default_factory=dict)  # the input record: its other keys pass through
    where: str = ""  # where it came from, for error messages: "<stdin>:3" ("" for the command line)


def _error(where: str, message: str) -> VoxloraError:
    """``where: message``, or the message alone for a request from the command line."""
    return VoxloraError(f"{where}: {message}" if where else message)


def _speaker(value, where: str, key: str = "speaker") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _error(where, f'"{key}" must be an integer >= 0, got {value!r}')
    return value


def _text(value, where: str, key: str = "text") -> str:
    if value is None:
        raise _error(where, f'missing "{key}"')
    if not isinstance(value, str):
        raise _error(where, f'"{key}" must be a string, got {value!r}')
    if not value.strip():
        raise _error(where, "empty text")
    return value.strip()


def parse_context(items, where: str) -> list[ContextClip]:
    """``[{"audio": path, "text": str, "speaker"?: int}, ...]`` -> ContextClips (checked)."""
    if not isinstance(items, list):
        raise _error(where, '"context" must be a list of {"audio", "text"} objects')
    clips = []
    for i, item in enumerate(items):
        at = f"{where}: context[{i}]" if where else f"context[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("audio"), str) or not item["audio"]:
            raise _error(at, 'needs "audio" (a path) and "text"')
        speaker = item.get("speaker")
        clips.append(
            ContextClip(
                audio=item["audio"],
                text=_text(item.get("text"), at),
                speaker=None if speaker is None else _speaker(speaker, at),
            )
        )
    return clips


def make_request(record: dict, n: int, config, out_dir, where: str, out=None) -> Request:
    """A `Request` from one input record; missing keys come from ``config`` (a `SynthConfig`).

    ``out`` (the command's ``-o``) names the WAV outright; else the record's "out", else
    ``out_dir/NNNN.wav`` numbered by ``n``.
    """
    if out is not None:
        out = Path(out)
    elif "out" in record:
        if not isinstance(record["out"], str) or not record["out"]:
            raise _error(where, '"out" must be a path')
        out = Path(record["out"])
    elif out_dir is not None:
        out = Path(out_dir) / f"{n:04d}.wav"
    else:
        raise _error(where, 'no "out" in the record and no --out-dir')
    adapter = record.get("adapter", config.adapter)
    if adapter in BASE_NAMES:
        adapter = None
    elif not isinstance(adapter, str):
        raise _error(where, f'"adapter" must be a path, "base" or null, got {adapter!r}')
    seed = record.get("seed", config.seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _error(where, f'"seed" must be an integer, got {seed!r}')
    return Request(
        text=_text(record.get("text"), where),
        out=out,
        speaker=_speaker(record.get("speaker", config.speaker), where),
        adapter=adapter,
        context=parse_context(record["context"], where) if "context" in record else list(config.context),
        seed=seed,
        record=record,
        where=where,
    )


def read_requests(
    lines: Iterable[bytes | str], config, out_dir=None, source: str = STDIN
) -> Iterator[Request | VoxloraError]:
    """Requests from plain-text or JSONL lines, lazily (one clip is made before the next line is read).

    ``lines`` are raw bytes (``sys.stdin.buffer``: each is decoded on its own) or decoded text. A
    bad line comes out as the `VoxloraError` saying where and what is wrong, not raised: the
    caller reports it and goes on with the next line (or stops, with --strict).
    """
    n = 0
    for line_no, line in enumerate(lines, 1):
        where = _where(source, line_no)
        if isinstance(line, bytes):
            line = decode_line(line, where)
            if isinstance(line, VoxloraError):  # not UTF-8
                n += 1
                yield line
                continue
        line = line.strip()
        if not line:
            continue
        n += 1
        try:
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise _error(where, f"not valid JSON ({e.msg})") from None
            else:
                record = {"text": line}
            yield make_request(record, n, config, out_dir, where)
        except VoxloraError as e:
            yield e
