"""Transcripts checked against the model's tokenizer (``mkmanifest --model M``).

Two things a manifest can get wrong that only show up as a bad voice later:

* characters the tokenizer cannot represent: they become ``<unk>`` or vanish, so the model learns
  audio for text it never sees. Found by encoding and decoding each transcript: a character that
  does not come back (or an unknown-token id) is named;
* a transcript that does not match its clip: a clip of 12 s with 3 tokens, or 2 s with 60, is a
  misaligned or truncated transcript. Each clip's tokens per second is compared with the set's
  median; a clip off by more than ``RATIO`` (2.5x) either way is named.

Both are reported (a warning line each, counted in the summary), never changed: the user decides.
"""

import logging
import statistics
from collections.abc import Iterable, Iterator
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.manifest import display_path

log = logging.getLogger("voxlora.textcheck")

RATIO = 2.5  # tokens per second this far from the set's median (either way) is suspicious


def load_tokenizer(model: str):
    """The ``tokenizers.Tokenizer`` of a model folder or hub id (its tokenizer.json)."""
    from tokenizers import Tokenizer

    from voxlora.modelfolder import model_dir

    path = Path(model_dir(model)) / "tokenizer.json"
    if not path.is_file():
        raise VoxloraError(f"{model}: no tokenizer.json to check the transcripts against")
    return Tokenizer.from_file(str(path))


def unrepresentable(tokenizer, text: str) -> str:
    """The characters of ``text`` that do not survive encode -> decode (sorted, unique)."""
    enc = tokenizer.encode(text, add_special_tokens=False)
    unk = tokenizer.token_to_id("<unk>")
    back = tokenizer.decode(enc.ids, skip_special_tokens=False)
    lost = {ch for ch in text if ch not in back and not ch.isspace()}
    if unk is not None and unk in enc.ids:
        for (start, end), token_id in zip(enc.offsets, enc.ids, strict=False):
            if token_id == unk:
                lost.update(text[start:end])
    return "".join(sorted(lost))


def check_texts(records: Iterable[dict], tokenizer, counts: dict) -> Iterator[dict]:
    """Pass ``records`` through, all of them; log the problems found and count them in ``counts``.

    The duration check needs the whole set's median, so records are collected first.
    """
    records = list(records)
    rates = []
    for record in records:
        n = len(tokenizer.encode(record["text"], add_special_tokens=False).ids)
        record["_tokens"] = n
        if record.get("duration"):
            rates.append(n / record["duration"])
    median = statistics.median(rates) if rates else 0.0
    for record in records:
        n = record.pop("_tokens")
        where = display_path(record["audio"])
        lost = unrepresentable(tokenizer, record["text"])
        if lost:
            counts["unrepresentable"] = counts.get("unrepresentable", 0) + 1
            log.warning("%s: the tokenizer cannot represent %r", where, lost)
        seconds = record.get("duration") or 0.0
        if median and seconds:
            rate = n / seconds
            if rate > RATIO * median or rate < median / RATIO:
                counts["text-vs-duration"] = counts.get("text-vs-duration", 0) + 1
                log.warning(
                    "%s: %d tokens in %.1f s (%.1f/s; the set's median is %.1f/s): misaligned transcript?",
                    where, n, seconds, rate, median,
                )  # fmt: skip
        yield record
