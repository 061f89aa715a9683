"""The stages mkmanifest adds for raw recordings: input without transcripts, cleaning, a text check.

`prepare` checks clips that come with a transcript. Long recordings and voice memos come without
one, so with ``--segment`` or ``--transcribe``:

* `iter_input`: INPUT may be a single audio file (``talk.m4a``), and entries that lack only their
  transcript (``no-text``) go on as records without ``text``;
* `clean_records`: each clip mkmanifest wrote (never an original) is trimmed and normalised in
  place (`clean.clean`); its ``quality`` (SNR, clipped share, gain) joins the record and problems
  are logged, one line per clip;
* `require_text`: what still has no transcript at the end is rejected (``no-text``), with its
  ``source``, so the user can type the text into the rejects file and feed it back.
"""

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from voxlora import audio, clean
from voxlora.corpora import AUDIO_EXTENSIONS, iter_source
from voxlora.manifest import Entry, check_record, display_path
from voxlora.rejects import Rejected, Tally

log = logging.getLogger("voxlora.recordings")


def iter_input(source, untranscribed: bool = False) -> Iterator[Entry]:
    """`corpora.iter_source`, plus a single audio file as INPUT; ``untranscribed``: keep no-text entries."""
    p = Path(str(source))
    if str(source) != "-" and p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
        record = {"audio": os.path.abspath(p)}
        entries: Iterable[Entry] = [Entry(display_path(p), record=record, original=dict(record))]
    else:
        entries = iter_source(source)  # a missing INPUT fails here, at once
    return _keep_untranscribed(entries) if untranscribed else iter(entries)


def _keep_untranscribed(entries: Iterable[Entry]) -> Iterator[Entry]:
    for entry in entries:
        if entry.error is not None and entry.error.kind == "no-text":
            record = _without_text(entry)
            if record is not None:
                yield Entry(entry.where, record=record, original=entry.original)
                continue
        yield entry


def _without_text(entry: Entry) -> dict | None:
    """The entry's record when the transcript is all it lacks, else None."""
    original = entry.original
    if not isinstance(original, dict) or not isinstance(original.get("audio"), str):
        return None
    try:
        check_record({**original, "text": "-"})
    except Rejected:
        return None
    return {k: v for k, v in original.items() if k not in ("text", "reason")}


def clean_file(path: str, config: clean.CleanConfig) -> tuple[float, dict]:
    """Trim and normalise the WAV at ``path`` in place: (its new duration, the `clean` report)."""
    x, sr = audio.load(path)
    y, report = clean.clean(x, sr, config)
    if config.trim or config.loudness is not None:
        audio.write_wav(path, y, sr)
    return audio.duration(y, sr), report


def clean_records(
    records: Iterable[dict],
    config: clean.CleanConfig,
    out_dir: str,
    tally: Tally,
    jobs: int = 1,
    journal=None,
) -> Iterator[dict]:
    """Trim and normalise each clip written in ``out_dir`` (in place, ``jobs`` processes); add its ``quality``.

    ``journal`` (`prepare_journal.Journal`): a clip `prepare` reused is not cleaned again (its noted
    result is used), and each clip cleaned here has its result noted.
    """
    root = os.path.realpath(out_dir)

    def mine(record) -> bool:  # never an original
        return os.path.dirname(os.path.realpath(record["audio"])) == root

    pool = None
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs)
    pending: deque = deque()

    def finish(record, job) -> dict:
        if job is None:
            return record
        if isinstance(job, dict):  # reused: cleaned by an earlier run
            seconds, report = job["duration"], job["quality"]
        else:
            seconds, report = job.result() if pool is not None else job
            if journal is not None:
                journal.note_cleaned(record["audio"], seconds, report)
        tally.seconds += seconds - (record.get("duration") or 0.0)
        record = {**record, "duration": seconds, "quality": report}
        for problem in clean.problems(report):
            log.warning("%s: %s", _origin(record), problem)
        return record

    try:
        for record in records:
            if not mine(record):
                job = None
            elif journal is not None and journal.cleaned(record["audio"]) is not None:
                job = journal.cleaned(record["audio"])
            elif pool is not None:
                job = pool.submit(clean_file, record["audio"], config)
            else:
                job = clean_file(record["audio"], config)
            pending.append((record, job))
            while len(pending) > 4 * max(1, jobs) or (pool is None and pending):
                yield finish(*pending.popleft())
        while pending:
            yield finish(*pending.popleft())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _origin(record: dict) -> str:
    source = record.get("source")
    if isinstance(source, dict) and "file" in source:
        return f"{display_path(source['file'])} {source.get('start', 0):.2f}-{source.get('end', 0):.2f} s"
    return display_path(record["audio"])


def require_text(records: Iterable[dict], tally: Tally) -> Iterator[dict]:
    """Records with a transcript; the others rejected (``no-text``) for the user to fill in."""
    for record in records:
        if isinstance(record.get("text"), str) and record["text"].strip():
            yield record
            continue
        tally.kept -= 1
        tally.seconds -= record.get("duration") or 0.0
        error = Rejected("no-text", f'{_origin(record)}: no transcript (fill in "text", or use --transcribe)')
        tally.reject(error, record)
        log.warning("%s", error)
