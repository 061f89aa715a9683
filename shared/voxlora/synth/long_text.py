"""Long texts: split at sentence boundaries into chunks one generation can speak, joined by pauses.

A CSM generation speaks at most ``--max-seconds`` of audio, so a paragraph is cut into chunks that
fit that budget, at about `CHARS_PER_SECOND` characters a second of speech (never fewer than
`MIN_CHUNK_CHARS`: a short text is one clip, whatever ``--max-seconds`` says): whole sentences
first; a sentence too long alone is cut at commas, semicolons and colons (never mid-clause).
Each chunk is spoken with the previous chunk (its text and the audio just made) as context, so the
voice, pace and level carry over, and the chunks are joined with `PAUSE_SECONDS` of silence.
``--max-total-seconds`` bounds the whole: the last chunk gets only what is left of it, and chunks
past it are not spoken (the record says ``"ended": "max-total-seconds"``).

>>> chunk_text("One two. Three four five! Six?", max_chars=16)
['One two.', 'Three four five!', 'Six?']
>>> chunk_text("A b. C d. E f.", max_chars=10)
['A b. C d.', 'E f.']
"""

import re

CHARS_PER_SECOND = 14.0  # characters of English text per second of speech, about (140-180 words a minute)
PAUSE_SECONDS = 0.25  # silence between two chunks
MIN_CHUNK_CHARS = 80  # a text this short is never cut (fragments are spoken worse than a whole clip)
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n?")
_CLAUSE_END = re.compile(r"(?<=[,;:—])\s+")


def chars_for(max_seconds: float) -> int:
    """How many characters a chunk may hold to be spoken within ``max_seconds`` (`MIN_CHUNK_CHARS` at least)."""
    return max(MIN_CHUNK_CHARS, int(max_seconds * CHARS_PER_SECOND))


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence's end mark (and at blank lines), stripped, none empty."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _pieces(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than ``max_chars`` cut at its clause marks (, ; : —); a clause is never cut
    (if it does not fit the model, synth says so in one line, as for any text)."""
    if len(sentence) <= max_chars:
        return [sentence]
    return _pack(_CLAUSE_END.split(sentence), max_chars)


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Consecutive parts joined with spaces while the joined text stays within ``max_chars``."""
    chunks: list[str] = []
    for part in parts:
        if chunks and len(chunks[-1]) + 1 + len(part) <= max_chars:
            chunks[-1] += " " + part
        else:
            chunks.append(part)
    return chunks


def chunk_text(text: str, max_chars: int) -> list[str]:
    """``text`` as chunks of whole sentences of at most ``max_chars`` (a longer sentence is cut)."""
    parts = [piece for s in sentences(text) for piece in _pieces(s, max_chars)]
    return _pack(parts, max_chars)


def split_request(text: str, max_seconds: float) -> list[str]:
    """The chunks synth speaks ``text`` in: the text itself, untouched, when it fits one generation."""
    max_chars = chars_for(max_seconds)
    return [text] if len(text) <= max_chars else chunk_text(text, max_chars)
