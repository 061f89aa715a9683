"""mkmanifest's options for raw recordings, and the stages they add around `prepare`.

``raw_data_options`` adds ``--segment --pause --transcribe --min-confidence --loudness
--no-normalize --no-trim --val-fraction --val --val-out --model --plot`` to a click command, which
then receives ``raw: RawOptions``. The stages, in order (each one a generator over the previous):

    iter_input -> [segment] -> prepare -> [clean] -> [transcribe] -> require_text -> [--model checks]

then `finish` splits off the validation set and logs the summary (and draws ``--plot``).
"""

import functools
import logging
from dataclasses import dataclass

import click

from voxlora.clean import CleanConfig
from voxlora.clikit import apply_options
from voxlora.segment import SegmentConfig

log = logging.getLogger("voxlora.mkmanifest")

SEGMENT = SegmentConfig()
CLEAN = CleanConfig()
MIN_CONFIDENCE = 0.5  # transcripts the recognizer is less sure of are rejected ("low-confidence")


@dataclass
class RawOptions:
    segment: bool = False
    pause: float = SEGMENT.pause
    transcribe: str | None = None  # "" : the offline default recognizer; a name: that one
    min_confidence: float = MIN_CONFIDENCE
    loudness: float | None = CLEAN.loudness
    trim: bool = CLEAN.trim
    val_fraction: float | None = None
    val: int | None = None
    val_out: str | None = None
    model: str | None = None
    plot: str | None = None

    def check(self, out_dir, fmt) -> None:
        """Usage errors (exit 2) between these options and mkmanifest's own."""
        if self.segment and not out_dir:
            raise click.UsageError("--segment needs --out-dir (the clips are written there)")
        if (self.val_fraction is not None or self.val is not None) and not self.val_out:
            raise click.UsageError("--val-fraction and --val need --val-out FILE (the held-out manifest)")
        if self.val_fraction is not None and self.val is not None:
            raise click.UsageError("--val-fraction and --val: give one")
        if self.val_out and self.val_fraction is None and self.val is None:
            raise click.UsageError("--val-out needs --val-fraction F or --val N")
        if self.val_out and fmt == "chatml":
            raise click.UsageError("--val-out is for clip manifests; not with --to chatml")

    @property
    def active(self) -> bool:
        """Any raw-recording option given (the summary is then shown in full)."""
        return bool(self.segment or self.transcribe is not None or self.splits or self.model or self.plot)

    @property
    def splits(self) -> bool:
        return self.val_out is not None

    @property
    def cleans(self) -> bool:
        """The written clips are trimmed or normalised in place."""
        return self.trim or self.loudness is not None

    def clean_config(self) -> CleanConfig:
        return CleanConfig(trim=self.trim, margin=CLEAN.margin, loudness=self.loudness)

    def segment_config(self, min_duration, max_duration) -> SegmentConfig:
        return SegmentConfig(
            min_duration=SEGMENT.min_duration if min_duration is None else min_duration,
            max_duration=SEGMENT.max_duration if max_duration is None else max_duration,
            pause=self.pause,
            margin=CLEAN.margin,
        )


def raw_data_options(f):
    """Add the raw-recording options to a click command, which then receives ``raw: RawOptions``."""
    options = [
        click.option(
            "--segment",
            is_flag=True,
            help="Cut long recordings into clips at pauses (Silero VAD), between --min-duration and "
            f"--max-duration [{SEGMENT.min_duration:g}-{SEGMENT.max_duration:g} s with --segment].",
        ),
        click.option(
            "--pause",
            type=click.FloatRange(min=0.05),
            default=SEGMENT.pause,
            show_default=True,
            metavar="SECONDS",
            help="With --segment: a silence this long ends a clip.",
        ),
        click.option(
            "--transcribe",
            is_flag=False,
            flag_value="",
            default=None,
            metavar="[MODEL]",
            help="Transcribe clips without text with an ASR model (default: the offline one).",
        ),
        click.option(
            "--min-confidence",
            type=click.FloatRange(0, 1),
            default=MIN_CONFIDENCE,
            show_default=True,
            help="With --transcribe: reject transcripts the recognizer is less sure of.",
        ),
        click.option(
            "--loudness",
            type=click.FloatRange(max=0),
            default=CLEAN.loudness,
            show_default=True,
            metavar="LUFS",
            help="Normalise the written clips to this loudness (ITU-R BS.1770).",
        ),
        click.option(
            "--no-normalize",
            "normalize",
            is_flag=True,
            flag_value=False,
            default=True,
            help="Keep the written clips' levels as recorded.",
        ),
        click.option(
            "--no-trim",
            "trim",
            is_flag=True,
            flag_value=False,
            default=True,
            help=f"Keep leading/trailing silence (default: cut to {CLEAN.margin:g} s).",
        ),
        click.option(
            "--val-fraction",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            help="Hold out whole recordings holding this share of the clips (into --val-out).",
        ),
        click.option(
            "--val",
            type=click.IntRange(min=1),
            metavar="N",
            help="Hold out whole recordings, N clips or more.",
        ),
        click.option(
            "--val-out", type=click.Path(dir_okay=False), metavar="FILE", help="The held-out manifest."
        ),
        click.option(
            "--model", help="Check the transcripts against this model's tokenizer (characters, length)."
        ),
        click.option(
            "--plot", type=click.Path(dir_okay=False), metavar="FILE.png", help="Draw the duration histogram."
        ),
    ]

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        normalize, loudness = kwargs.pop("normalize"), kwargs.pop("loudness")
        raw = RawOptions(
            segment=kwargs.pop("segment"),
            pause=kwargs.pop("pause"),
            transcribe=kwargs.pop("transcribe"),
            min_confidence=kwargs.pop("min_confidence"),
            loudness=loudness if normalize else None,
            trim=kwargs.pop("trim"),
            val_fraction=kwargs.pop("val_fraction"),
            val=kwargs.pop("val"),
            val_out=kwargs.pop("val_out"),
            model=kwargs.pop("model"),
            plot=kwargs.pop("plot"),
        )
        return f(*args, raw=raw, **kwargs)

    return apply_options(options, wrapper)


def before_prepare(source, raw: RawOptions, out_dir, sample_rate, min_duration, max_duration, tally):
    """The entries `prepare` reads: INPUT's, cut into clips first with --segment."""
    from voxlora.recordings import iter_input

    entries = iter_input(source, untranscribed=raw.segment or raw.transcribe is not None)
    if raw.segment:
        from voxlora.segment import segment_entries

        entries = segment_entries(
            entries, raw.segment_config(min_duration, max_duration), out_dir, sample_rate, tally
        )
    return entries


def after_prepare(records, raw: RawOptions, out_dir, tally, counts: dict, jobs: int = 1, journal=None):
    """`prepare`'s records cleaned, transcribed and checked as the options say (``journal``: prepare's)."""
    from voxlora.recordings import clean_records, require_text

    if out_dir and raw.cleans:
        records = clean_records(records, raw.clean_config(), out_dir, tally, jobs, journal)
    if raw.transcribe is not None:
        from voxlora.transcribe import transcribe_records

        records = transcribe_records(records, raw.transcribe or None, raw.min_confidence, tally)
    records = require_text(records, tally)
    if raw.model:
        from voxlora.textcheck import check_texts, load_tokenizer

        records = check_texts(records, load_tokenizer(raw.model), counts)
    return records


def finish(records: list[dict], raw: RawOptions) -> tuple[list[dict], list[dict]]:
    """Split off and write the validation manifest (--val-out): (training records, validation records)."""
    if not raw.splits:
        return records, []
    import json

    from voxlora.atomic import atomic_write_text
    from voxlora.split import recording_of, split_by_recording

    train, val = split_by_recording(records, raw.val_fraction, raw.val)
    atomic_write_text(raw.val_out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in val))
    log.info(
        "%s: %d validation clips from %d recordings; %d training clips from %d recordings",
        raw.val_out, len(val), len({recording_of(r) for r in val}),
        len(train), len({recording_of(r) for r in train}),
    )  # fmt: skip
    return train, val


def summarize(records: list[dict], raw: RawOptions, counts: dict) -> None:
    """The closing summary on stderr (and --plot)."""
    from voxlora.summary import describe, plot

    # at info level for the raw-recording runs; a plain run keeps its one closing line (--debug shows it)
    level = logging.INFO if raw.active else logging.DEBUG
    for line in describe(records):
        log.log(level, "%s", line)
    if counts:
        log.info("checks: %s", ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    if raw.plot:
        plot(records, raw.plot)
        log.info("wrote %s", raw.plot)
