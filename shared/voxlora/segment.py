"""Long recordings cut into training clips at pauses (``mkmanifest --segment``).

A recording is decoded, its speech found by `vad` (Silero's ONNX model), and the speech spans
grouped into clips by `plan`:

1. a pause of at least ``pause`` seconds (0.3) ends a clip: sentences come out one by one;
2. a clip longer than ``max_duration`` is split again at its longest inner pause (any the VAD
   found, down to 0.1 s), recursively; only a stretch with no pause at all is cut in equal pieces
   (marked ``"cut": "no-pause"``), since a word may be cut there;
3. a clip shorter than ``min_duration`` joins its neighbour across the shorter pause when the two
   fit in ``max_duration``; otherwise it is rejected (``too-short``);
4. each clip keeps ``margin`` seconds (0.15) of the recording around its speech, never more than
   half of the pause beside it, so no clip holds the start of the next sentence.

Each clip is written as a mono 16-bit WAV (``<stem>-0001.wav`` …) in the output folder and described by a record with ``source``: ``{"file", "start", "end"}``
in seconds of the original recording, so a clip can be found again.

    kept, too_short = plan([(0.5, 2.5), (2.8, 5.0)], total=6.0)   # speech spans from `vad`
    # kept: [Span(0.35, 2.65), Span(2.65, 5.15)]: the 0.3 s pause shared between the two clips
"""

import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxlora import audio, vad
from voxlora.errors import VoxloraError
from voxlora.manifest import Entry, display_path
from voxlora.rejects import Rejected, Tally

log = logging.getLogger("voxlora.segment")


@dataclass(frozen=True)
class SegmentConfig:
    min_duration: float = 2.0  # seconds: shorter pieces join a neighbour, or are rejected
    max_duration: float = 15.0  # seconds: longer pieces are split at their longest pause
    pause: float = 0.3  # seconds of silence that end a clip
    margin: float = 0.15  # seconds kept around the speech (at most half the pause beside it)
    threshold: float = 0.5  # VAD speech probability


@dataclass
class Span:
    start: float  # seconds in the recording, margin included
    end: float
    cut: str | None = None  # "no-pause" when a stretch without any pause had to be cut


def _split_long(group: list[tuple[float, float]], max_duration: float) -> list[list[tuple[float, float]]]:
    """Split a run of speech spans at its longest inner pause until each part fits ``max_duration``."""
    if group[-1][1] - group[0][0] <= max_duration or len(group) == 1:
        return [group]
    gaps = [group[i + 1][0] - group[i][1] for i in range(len(group) - 1)]
    i = int(np.argmax(gaps))
    return _split_long(group[: i + 1], max_duration) + _split_long(group[i + 1 :], max_duration)


def plan(
    regions: list[tuple[float, float]], total: float, config: SegmentConfig = SegmentConfig()
) -> tuple[list[Span], list[Span]]:
    """Clips from speech ``regions`` (seconds) of a ``total``-second recording: (kept, too short).

    >>> kept, short = plan([(0.5, 2.5), (2.7, 4.0), (6.0, 8.5), (9.5, 9.8)], 10.0)
    >>> [(s.start, s.end) for s in kept], [(s.start, s.end) for s in short]
    ([(0.35, 4.15), (5.85, 9.9)], [])
    """
    if not regions:
        return [], []
    groups = [[regions[0]]]
    for prev, cur in zip(regions, regions[1:], strict=False):
        if cur[0] - prev[1] >= config.pause:
            groups.append([cur])
        else:
            groups[-1].append(cur)
    groups = [part for g in groups for part in _split_long(g, config.max_duration)]
    spans = [[g[0][0], g[-1][1]] for g in groups]

    # too short: join the neighbour across the shorter pause, when the two fit
    i = 0
    while i < len(spans):
        s, e = spans[i]
        if e - s >= config.min_duration:
            i += 1
            continue
        options = []
        if i > 0 and e - spans[i - 1][0] <= config.max_duration:
            options.append((s - spans[i - 1][1], i - 1))
        if i + 1 < len(spans) and spans[i + 1][1] - s <= config.max_duration:
            options.append((spans[i + 1][0] - e, i))
        if not options:
            i += 1
            continue
        _, j = min(options)
        spans[j : j + 2] = [[spans[j][0], spans[j + 1][1]]]
        i = max(0, j)

    kept, short = [], []
    for k, (s, e) in enumerate(spans):
        before = s - spans[k - 1][1] if k else s
        after = spans[k + 1][0] - e if k + 1 < len(spans) else total - e
        span = Span(
            round(max(0.0, s - min(config.margin, before / 2)), 3),
            round(min(total, e + min(config.margin, after / 2)), 3),
        )
        if e - s > config.max_duration:  # one stretch of speech without a single pause
            pieces = math.ceil((e - s) / config.max_duration)
            step = (span.end - span.start) / pieces
            kept += [
                Span(round(span.start + p * step, 3), round(span.start + (p + 1) * step, 3), "no-pause")
                for p in range(pieces)
            ]
        elif e - s < config.min_duration:
            short.append(span)
        else:
            kept.append(span)
    return kept, short


def find_spans(x: np.ndarray, sr: int, config: SegmentConfig) -> tuple[list[Span], list[Span]]:
    """`plan` on the speech `vad` finds in ``x`` (mono, any rate)."""
    probs = vad.speech_probs(audio.resample(x, sr, vad.RATE))
    regions = vad.speech_regions(probs, threshold=config.threshold)
    return plan(regions, len(x) / sr, config)


def segment_entries(
    entries: Iterable[Entry],
    config: SegmentConfig,
    out_dir: str,
    sample_rate: int | None,
    tally: Tally,
) -> Iterator[Entry]:
    """Each entry's recording cut into clips written in ``out_dir``: one new `Entry` per clip.

    Entries that carry an error pass through unchanged (the next stage rejects them). A recording
    that cannot be read, or has no speech, is rejected here; so is a piece too short to keep. The
    new records keep the recording's keys (speaker, …) but not its ``text``, which belonged to the
    whole recording: a clip's text comes from ``--transcribe`` (or the user, through ``--rejects``).
    Clips are cleaned later (`recordings.clean_records`), as every clip written in ``out_dir`` is.
    """
    for entry in entries:
        if entry.error is not None:
            yield entry
            continue
        src = entry.record["audio"]
        try:
            x, sr = audio.load(src)
            audio.check(x)
        except Rejected as e:
            _reject(tally, e.at(entry.where), entry.record)
            continue
        kept, short = find_spans(x, sr, config)
        base = {
            k: v for k, v in entry.record.items() if k not in ("audio", "text", "duration", "sample_rate")
        }
        shown = display_path(src)
        if entry.record.get("text"):
            log.warning("%s: its transcript covers the whole recording, not one clip: dropped", shown)
        if not kept and not short:
            _reject(tally, Rejected("no-speech", f"{entry.where}: no speech found"), entry.record)
            continue
        target = sample_rate or sr
        stem = Path(src).stem
        # every piece is written, numbered in time order: a rejected one too, so it can be fixed and fed back
        for n, span in enumerate(sorted(kept + short, key=lambda s: s.start), start=1):
            piece = x[int(round(span.start * sr)) : int(round(span.end * sr))]
            dest = os.path.abspath(os.path.join(out_dir, f"{stem}-{n:04d}.wav"))
            try:
                audio.write_wav(dest, audio.resample(piece, sr, target), target)
            except OSError as e:
                raise VoxloraError(f"{display_path(dest)}: cannot write ({e.strerror or e})") from None
            record = {**base, "audio": dest, "source": _source(src, span)}
            if span in short:
                reason = Rejected(
                    "too-short",
                    f"{shown} {span.start:.2f}-{span.end:.2f} s: too short ({span.end - span.start:.2f} s "
                    f"< --min-duration {config.min_duration:g}) and no room to join a neighbour",
                )
                _reject(tally, reason, {**record, "duration": audio.duration(piece, sr)})
                continue
            if span.cut:
                record["cut"] = span.cut
                log.warning(
                    "%s %.2f-%.2f s: no pause within --max-duration; cut mid-speech",
                    shown,
                    span.start,
                    span.end,
                )
            yield Entry(f"{shown} {span.start:.2f}-{span.end:.2f} s", record=record, original=dict(record))
        log.info("%s: %d clips, %d too short", shown, len(kept), len(short))


def _source(src: str, span: Span) -> dict:
    return {"file": os.path.abspath(src), "start": span.start, "end": span.end}


def _reject(tally: Tally, error: Rejected, record: dict) -> None:
    tally.reject(error, record)
    log.warning("%s", error)
