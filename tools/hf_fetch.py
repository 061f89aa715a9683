"""hf-fetch: clips of a Hugging Face dataset (Hub id or local folder) as WAV files + JSONL records.

The engine is `voxlora.hf`; this file only parses options and streams. ``datasets`` is imported only
after ``--help`` had its chance, so help stays fast.
"""

import logging

import click
from voxlora.clikit import command, common_options, emit, run, show_progress, speakers_option
from voxlora.errors import VoxloraError
from voxlora.lock import output_lock

log = logging.getLogger("voxlora.hf_fetch")

EPILOG = """\b
Examples:
  hf-fetch ./my-dataset --limit 100 --out-dir clips | mkmanifest - --sample-rate 24000 --out-dir wav24 > train.jsonl
  hf-fetch openslr/librispeech_asr --config clean --split train.100 --limit 200 --out-dir clips > clips.jsonl
  hf-fetch mozilla-foundation/common_voice_17_0 --language en --split train --limit 50 --out-dir cv

\b
DATASET is a Hub id (streamed: --limit 100 reads about 100 rows), a save_to_disk folder, parquet/arrow
files, or an audio folder (audiofolder metadata, LJSpeech, Common Voice, LibriTTS). Known layouts pick
their transcript and speaker columns themselves (Common Voice, LibriSpeech, VoxPopuli, LJSpeech).
Each clip prints {"audio", "text", "speaker", "duration", "sample_rate", "source"}. A row that cannot be
decoded is reported on stderr and skipped. Offline, a Hub id fails at once (HF_HUB_OFFLINE is respected).
"""


@command(epilog=EPILOG)
@click.argument("dataset")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Write the WAVs here.")
@click.option("--config", "config_name", metavar="NAME", help="Dataset configuration (subset).")
@click.option("--split", metavar="SPLIT", help='Split to read (default: "train", else the first).')
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Stop after N clips.")
@click.option(
    "--language", metavar="CODE", help="Configuration of a multilingual dataset (Common Voice, VoxPopuli)."
)
@click.option(
    "--sample-rate", type=click.IntRange(min=1), metavar="HZ", help="Resample to HZ (default: keep)."
)
@click.option("--text-column", metavar="NAME", help="Column holding the transcript.")
@click.option("--audio-column", metavar="NAME", help="Column holding the audio.")
@click.option("--speaker-column", metavar="NAME", help="Column naming the speaker.")
@speakers_option
@common_options
def cli(dataset, out_dir, config_name, speakers_file, **fields):
    """Fetch clips of a Hugging Face dataset as WAVs; print one JSONL record per clip."""
    from pathlib import Path

    from voxlora import outputs
    from voxlora.hf import FetchConfig, fetch, hide_datasets_progress
    from voxlora.rejects import Tally
    from voxlora.speakers import SpeakerMap

    if not show_progress():
        hide_datasets_progress()
    kind = outputs.wav_folder("hf-fetch")  # never the dataset's own folder, never a folder of other files
    outputs.check_dir(out_dir, kind, [("the dataset's folder", dataset)] if Path(dataset).exists() else [])
    click.get_current_context().with_resource(output_lock(out_dir, "hf-fetch"))  # until the command ends
    with outputs.made_dir(out_dir, kind):  # a failure before any clip is written leaves no folder
        cfg = FetchConfig(dataset, out_dir, config=config_name, **fields)
        speakers = SpeakerMap.load(speakers_file) if speakers_file else SpeakerMap()
        tally = Tally()
        records = fetch(cfg, speakers, tally)
        if show_progress():
            from tqdm import tqdm

            records = tqdm(records, desc="hf-fetch", unit="clip", total=cfg.limit)
        try:
            for record in records:
                emit(record)
        finally:
            if speakers_file and len(speakers):
                speakers.save(speakers_file)
        if len(speakers):
            log.info("%s", speakers.describe())
        log.info("%s: %s", dataset, tally.summary())
        if tally.kept == 0:  # no usable input at all
            raise VoxloraError(f"{dataset}: no usable clip ({tally.summary()})")


main = run(cli)
