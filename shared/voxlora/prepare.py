"""mkmanifest's engine: input entries in, checked (and optionally resampled) clips out, in input order.

For each `Entry` (from `corpora.iter_source`):

1. an entry that already carries an error (bad JSON, no transcript, ...) is rejected, and so is a
   second record for an audio file seen before (the first one is kept);
2. the speaker is set: ``speaker`` for every record when given, else a record's own integer
   ``speaker``, else its ``speaker_name`` numbered by the `SpeakerMap`;
3. a worker (``jobs`` processes) checks the audio file: it exists, is a file, decodes, is not empty,
   silent, NaN or truncated, lasts between ``min_duration`` and ``max_duration``; with ``out_dir``
   it writes a mono 16-bit WAV there (resampled to ``sample_rate``); originals are never touched;
4. the finished record comes out in input order, whatever the number of workers.

Every rejection is logged as one line (``train.jsonl:7: clips/a.wav: silent (...)``) and counted in
the `Tally`; with ``strict`` the first one is raised instead.
"""

import hashlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from voxlora import audio
from voxlora.errors import VoxloraError
from voxlora.manifest import Entry, display_path
from voxlora.rejects import Rejected, Tally
from voxlora.speakers import SpeakerMap

log = logging.getLogger("voxlora.prepare")

FIRST_KEYS = ("audio", "text", "speaker", "duration", "sample_rate")


@dataclass(frozen=True)
class PrepareConfig:
    sample_rate: int | None = None  # resample to this rate (Hz); needs out_dir
    out_dir: str | None = None  # write mono 16-bit PCM WAVs here; None: check only, keep the paths
    min_duration: float | None = None  # seconds; shorter clips are rejected ("too-short")
    max_duration: float | None = None  # seconds; longer clips are rejected ("too-long")
    speaker: int | None = None  # this speaker id on every record
    jobs: int = 1  # worker processes for decode, check and resample
    strict: bool = False  # raise the first rejection instead of logging it and going on
    reuse: bool = True  # keep outputs an earlier run wrote from the same source (prepare_journal)
    clean: dict | None = None  # the cleaning a later stage does in place (clean_records): trim, margin,
    # loudness; part of the journal's settings, and a reused output must have been cleaned already


def make_out_dir(path) -> None:
    """Create ``path`` (and its parents) and write a test file there, before any clip is read.

    A folder that cannot be made or written is one `VoxloraError`, not a failure at the first clip.
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise VoxloraError(f"{path}: cannot write the clips there ({e.strerror or e})") from None


def check_clip(src: str, dest: str | None, config: PrepareConfig, known: dict | None = None):
    """Check one audio file, write it to ``dest`` when given: (path, duration s, sample rate, journal line).

    Runs in a worker process; raises `Rejected` without a path in the message. A failure to write
    ``dest`` (a full disk) is a `VoxloraError` that stops the run: every later clip would fail too.
    ``known`` is the journal's line for ``dest`` (`prepare_journal`): when it matches the source's
    hash and the settings, and ``dest`` is whole, nothing is decoded or written (journal line None).
    """
    if dest is None:
        return (*_check_and_write(src, None, config)[:3], None)
    from voxlora.filehash import file_sha256
    from voxlora.prepare_journal import settings_key, whole_wav

    try:
        digest = file_sha256(src)
    except OSError:
        digest = None  # audio.load says what is wrong with it
    key = settings_key(config.sample_rate, config.clean)
    if (
        config.reuse
        and known
        and digest
        and known.get("sha256") == digest
        and known.get("settings") == key
        and (config.clean is None or isinstance(known.get("cleaned"), dict))
        and whole_wav(dest)
    ):
        _check_duration(known["seconds"], config)
        return dest, known["duration"], known["sample_rate"], None
    path, duration, rate, seconds = _check_and_write(src, dest, config)
    line = {"file": Path(dest).name, "sha256": digest, "settings": key, "seconds": seconds,
            "duration": duration, "sample_rate": rate}  # fmt: skip
    return path, duration, rate, line


def _check_duration(seconds: float, config: PrepareConfig) -> None:
    if config.min_duration is not None and seconds < config.min_duration:
        raise Rejected("too-short", f"too short ({seconds:.2f} s < --min-duration {config.min_duration:g})")
    if config.max_duration is not None and seconds > config.max_duration:
        raise Rejected("too-long", f"too long ({seconds:.2f} s > --max-duration {config.max_duration:g})")


def _check_and_write(src: str, dest: str | None, config: PrepareConfig):
    try:
        x, sr = audio.load(src)
    except Rejected:
        raise
    except Exception as e:  # a decoder failing in a way `audio.load` does not know: this clip only
        raise Rejected("unreadable", f"unreadable audio ({_why(e)})") from None
    audio.check(x)
    seconds = len(x) / sr
    _check_duration(seconds, config)
    if dest is None:
        return src, audio.duration(x, sr), sr, seconds
    target = config.sample_rate or sr
    try:
        y = audio.resample(x, sr, target)
    except Exception as e:
        raise Rejected("resample-failed", f"cannot resample {sr} Hz to {target} Hz ({_why(e)})") from None
    try:
        audio.write_wav(dest, y, target)
    except OSError as e:
        raise VoxloraError(f"{display_path(dest)}: cannot write ({e.strerror or e})") from None
    return dest, audio.duration(y, target), target, seconds


def _why(e: Exception) -> str:
    """An unexpected exception in one line: ``ValueError: bad rate``."""
    return " ".join(f"{type(e).__name__}: {e}".split())


def _check_clip(args):
    try:
        return check_clip(*args)
    except Rejected as e:
        return e


class _Namer:
    """Output file names in out_dir: ``<stem>.wav``, or ``<stem>-<hash>.wav`` when taken (or the source)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.used: set[str] = set()

    def __call__(self, src: str) -> str:
        stem = Path(src).stem
        name = f"{stem}.wav"
        dest = os.path.join(self.out_dir, name)
        if name in self.used or os.path.realpath(dest) == os.path.realpath(src):
            name = f"{stem}-{hashlib.sha1(src.encode()).hexdigest()[:8]}.wav"
            dest = os.path.join(self.out_dir, name)
        self.used.add(name)
        return os.path.abspath(dest)


def _in_order(tasks: Iterable, jobs: int) -> Iterator:
    """(entry, record, label, job args or a Rejected) -> the same with the job's result, in input order."""
    if jobs <= 1:
        for entry, record, label, job in tasks:
            yield entry, record, label, job if isinstance(job, Rejected) else _check_clip(job)
        return
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs)
    pending: deque = deque()
    try:
        for entry, record, label, job in tasks:
            pending.append(
                (entry, record, label, job if isinstance(job, Rejected) else pool.submit(_check_clip, job))
            )
            while len(pending) > 4 * jobs:  # a bounded window keeps a stdin stream flowing
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(item):
    entry, record, label, job = item
    return entry, record, label, job if isinstance(job, Rejected) else job.result()


def prepare(
    entries: Iterable[Entry], config: PrepareConfig, speakers: SpeakerMap, tally: Tally, journal=None
) -> Iterator[dict]:
    """Yield the finished record of each usable entry, in input order (see the module docstring).

    ``journal``: out_dir's `prepare_journal.Journal` when a later stage adds to it (clean_records);
    by default prepare opens and closes its own.
    """
    namer = _Namer(config.out_dir) if config.out_dir else None
    own = journal is None and bool(config.out_dir)
    if own:
        from voxlora.prepare_journal import Journal

        journal = Journal(config.out_dir)
    first_seen: dict[str, str] = {}

    def tasks():
        for entry in entries:
            if entry.error is not None:
                yield entry, None, None, entry.error
                continue
            record = dict(entry.record)
            key = os.path.realpath(record["audio"])
            if key in first_seen:
                dup = Rejected(
                    "duplicate", f"{entry.where}: duplicate of {first_seen[key]} (same audio file)"
                )
                yield entry, record, None, dup
                continue
            first_seen[key] = entry.where
            if config.speaker is not None:
                record["speaker"] = config.speaker
            elif record.get("speaker") is None and record.get("speaker_name") is not None:
                record["speaker"] = speakers(record["speaker_name"])
            shown = display_path(record["audio"])
            label = entry.where if entry.where == shown else f"{entry.where}: {shown}"
            dest = namer(record["audio"]) if namer else None
            yield (
                entry,
                record,
                label,
                (record["audio"], dest, config, journal.get(dest) if journal else None),
            )

    try:
        yield from _finish(_in_order(tasks(), config.jobs), config, tally, journal)
    finally:
        if journal is not None:
            if own:
                journal.close()
            if journal.summary():
                log.info("%s", journal.summary())


def _finish(results, config: PrepareConfig, tally: Tally, journal) -> Iterator[dict]:
    for entry, record, label, result in results:
        if isinstance(result, Rejected):
            if label is not None:  # the worker's reason, without the file it is about
                result = result.at(label)
            tally.reject(result, entry.record if entry.record is not None else entry.original)
            if config.strict:
                raise result
            log.warning("%s", result)
            continue
        path, seconds, rate, line = result
        if journal is not None:
            if line is None:
                journal.reused += 1
                cleaned = journal.get(path).get("cleaned") if config.clean is not None else None
                if cleaned is not None:  # clean_records keeps it as it is
                    journal.kept[Path(path).name] = cleaned
            else:
                journal.add(line)
                journal.written += 1
        record.update(audio=path, duration=seconds, sample_rate=rate)
        if isinstance(record.get("text"), str):  # none yet for a segment that --transcribe will fill
            record["text"] = record["text"].strip()
        out = {k: record[k] for k in FIRST_KEYS if k in record}
        out.update((k, v) for k, v in record.items() if k not in out)
        tally.keep(seconds)
        yield out
