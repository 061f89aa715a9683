"""The numbers `lora-eval` puts on a clip: error rates, speaker similarity, length sanity.

Pure functions on strings and arrays (jiwer does the alignments):

    >>> round(wer("The birch canoe slid.", "the birch canoe slid"), 3)
    0.0
    >>> round(wer("The birch canoe slid.", "the church canoe"), 3)
    0.5
    >>> round(cosine([1.0, 0.0], [1.0, 1.0]), 3)
    0.707

Texts are compared after `normalize`: lower case, punctuation dropped (an apostrophe inside a word
is kept: "don't"), whitespace collapsed. Numbers are not spelled out, so "4" against "four" counts
as an error: write held-out texts the way they are spoken.
"""

import math
import re
import unicodedata

import numpy as np

# Length sanity: speech runs at roughly 10-20 characters a second in English; a clip far outside
# this for its text is a stop failure (too long) or a clip cut short (too short).
CHARS_PER_S = (8.0, 25.0)  # the plausible range; outside it `length_ok` is False
REFERENCE_RATIO = (0.5, 2.0)  # duration against the real recording's: the plausible range

_WORD_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")


def normalize(text: str) -> str:
    """'The Quick, brown fox—jumps!' -> 'the quick brown fox jumps'."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = _WORD_APOSTROPHE.sub("\0", text)  # keep "don't" whole
    text = "".join(" " if unicodedata.category(c)[0] in "PSZC" and c != "\0" else c for c in text)
    return " ".join(text.replace("\0", "'").split())


def _rate(measure, reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0  # everything deleted (jiwer refuses an empty hypothesis)
    return float(measure(ref, hyp))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0 = exact; can pass 1 with insertions)."""
    import jiwer

    return _rate(jiwer.wer, reference, hypothesis)


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, spaces included, after `normalize`."""
    import jiwer

    return _rate(jiwer.cer, reference, hypothesis)


def cosine(a, b) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def speaker_similarity(embedding, references) -> float | None:
    """Mean cosine of ``embedding`` against each reference embedding; None without references."""
    refs = list(references)
    if not refs:
        return None
    return float(np.mean([cosine(embedding, r) for r in refs]))


def length_check(text: str, duration: float, reference_duration: float | None = None) -> dict:
    """Length sanity of one clip: characters per second of its text, the ratio to the real recording.

    >>> length_check("Hello there.", 1.0)
    {'chars_per_s': 11.0, 'length_ok': True}
    >>> length_check("Hello there.", 9.0, reference_duration=1.2)["length_ok"]
    False
    """
    chars = len(normalize(text))
    rate = chars / duration if duration > 0 else math.inf
    ok = CHARS_PER_S[0] <= rate <= CHARS_PER_S[1] if chars else duration == 0
    out = {"chars_per_s": round(rate, 2) if math.isfinite(rate) else None, "length_ok": bool(ok)}
    if reference_duration:
        ratio = duration / reference_duration
        out["duration_ratio"] = round(ratio, 3)
        out["length_ok"] = out["length_ok"] and REFERENCE_RATIO[0] <= ratio <= REFERENCE_RATIO[1]
    return out
