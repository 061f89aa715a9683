"""Is this input a JSONL text file at all? Said once, at the start, instead of a line per line.

A WAV, a safetensors file or a JSON list handed where a manifest goes would otherwise be read line
by line and give a hundred "not UTF-8" or "invalid JSON" lines. `jsonl_lines` passes the lines of a
real manifest through unchanged (bad lines among good ones are still each reported by the reader),
but refuses at once, in one line, input whose first lines hold a NUL byte (binary data) or whose
first `LOOK_AT` non-blank lines hold no JSON object at all.
"""

from collections.abc import Iterable, Iterator

from voxlora.errors import VoxloraError

LOOK_AT = 5  # non-blank lines read before deciding that no JSON object is coming
_MAGIC = {b"RIFF": "a WAV/RIFF file", b"fLaC": "a FLAC file", b"OggS": "an Ogg file", b"ID3": "an MP3 file",
          b"PK\x03\x04": "a zip file", b"\x80": "a pickle"}  # fmt: skip


def _what(raw: bytes) -> str:
    return next((name for magic, name in _MAGIC.items() if raw.startswith(magic)), "binary data")


def jsonl_lines(name: str, lines: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """``(line_no, raw)`` pairs of ``lines``, checked to be JSONL text first (`VoxloraError` if not)."""
    lines = iter(lines)
    held, seen, deciding = [], 0, True
    for line_no, raw in lines:
        if not deciding:
            yield line_no, raw
            continue
        held.append((line_no, raw))
        if b"\0" in raw or (line_no == 1 and raw.startswith(tuple(_MAGIC))):
            raise VoxloraError(
                f"{name}: not a text manifest ({_what(held[0][1])}); a manifest is JSONL, one JSON object per line"
            )
        text = raw.decode("utf-8", "replace").lstrip("\ufeff").strip()
        if not text:
            continue
        seen += 1
        if text.startswith("{"):
            deciding = False
        elif seen >= LOOK_AT:
            break
        if not deciding:
            yield from held
            held = []
    if deciding and seen:
        raise VoxloraError(
            f"{name}: not a JSONL manifest (none of its first {seen} lines is a JSON object); "
            "a manifest holds one JSON object per line"
        )
    yield from held


def check_manifest_file(path) -> None:
    """Refuse a manifest file that is not JSONL text (see `jsonl_lines`) by reading its first lines only.

    For commands that read the manifest later, after heavier work: the one line comes at once.
    Missing files and ``-`` are left to the reader.
    """
    import itertools
    from pathlib import Path

    if str(path) == "-" or not Path(path).is_file():
        return
    with open(path, "rb") as f:
        for _ in itertools.islice(jsonl_lines(str(path), enumerate(f, start=1)), LOOK_AT):
            pass
