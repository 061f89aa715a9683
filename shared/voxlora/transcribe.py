"""Transcripts for clips that have none (``mkmanifest --transcribe [MODEL]``), from `voxlora.asr`.

The recognizer is the one `lora-eval` uses (`asr.load_recognizer`: the offline default bundled in
its pip package, or a named model). A clip that has a transcript keeps it; one without gets the
recognizer's text and ``"asr": {"model", "confidence"}``. A transcript the recognizer is less sure
of than ``min_confidence``, or an empty one, is rejected (``low-confidence``, ``no-speech``) with the
text it heard, so the user can correct it in the rejects file and feed it back.
"""

import logging
from collections.abc import Iterable, Iterator

from voxlora import audio
from voxlora.manifest import display_path
from voxlora.rejects import Rejected, Tally

log = logging.getLogger("voxlora.transcribe")


def transcribe_records(
    records: Iterable[dict], model: str | None, min_confidence: float, tally: Tally, recognizer=None
) -> Iterator[dict]:
    """``records`` with a ``text`` for each one that had none (see the module docstring)."""
    for record in records:
        if isinstance(record.get("text"), str) and record["text"].strip():
            yield record
            continue
        if recognizer is None:
            from voxlora.asr import load_recognizer

            recognizer = load_recognizer(model)
            log.info("transcribing with %s", recognizer.name)
        x, sr = audio.load(record["audio"])
        heard = recognizer.transcribe(x, sr)
        text = " ".join(heard.text.split())
        confidence = round(float(heard.confidence), 3)
        record = {**record, "text": text, "asr": {"model": recognizer.name, "confidence": confidence}}
        where = _where(record)
        if not text:
            error = Rejected("no-speech", f"{where}: the recognizer heard no words")
        elif confidence < min_confidence:
            error = Rejected(
                "low-confidence",
                f"{where}: transcript confidence {confidence:.2f} < --min-confidence {min_confidence:g} ({text!r})",
            )
        else:
            yield record
            continue
        tally.kept -= 1
        tally.seconds -= record.get("duration") or 0.0
        tally.reject(error, record)
        log.warning("%s", error)


def _where(record: dict) -> str:
    source = record.get("source")
    if isinstance(source, dict) and "file" in source:
        return f"{display_path(source['file'])} {source.get('start', 0):.2f}-{source.get('end', 0):.2f} s"
    return display_path(record["audio"])
