"""mkmanifest: audio and transcripts in, a checked training manifest (JSONL) out.

INPUT is an audio folder (LibriTTS-style sidecar transcripts, LJSpeech metadata.csv, Common Voice
TSV + clips/, Hugging Face audiofolder, csm-mlx JSON list), a JSONL manifest, or ``-`` for JSONL on
stdin (what hf-fetch prints). Every clip is decoded and checked; bad ones are reported on stderr, one
line each, and the rest come out. The engine is `voxlora.prepare`; this file only parses options.
"""

import json
import logging
import sys
from dataclasses import asdict

import click
from voxlora.clikit import command, common_options, emit, run, show_progress
from voxlora.errors import VoxloraError
from voxlora.lock import output_lock
from voxlora.prepare_options import prepare_options
from voxlora.rawdata_options import raw_data_options

log = logging.getLogger("voxlora.mkmanifest")

EPILOG = """\b
Examples:
  hf-fetch ./my-dataset --out-dir clips | mkmanifest - --sample-rate 24000 --out-dir wav24 > train.jsonl
  mkmanifest LibriTTS/train-clean-100 --speakers speakers.json --rejects rejects.jsonl > train.jsonl
  mkmanifest LJSpeech-1.1 --max-duration 15 --to csm-mlx > train.json
  mkmanifest LibriTTS/train-clean-100 --sample-rate 24000 --out-dir wav24 --to chatml > higgs.jsonl
  mkmanifest talks/ --segment --transcribe --sample-rate 24000 --out-dir clips --val 4 --val-out val.jsonl > train.jsonl

\b
Output: one JSON object per kept clip, {"audio", "text", "speaker", "duration", "sample_rate", ...};
"audio" is an absolute path; keys the input had pass through. A closing line on stderr counts the
kept clips and the rejected ones by reason. Exit 1 with --strict at the first bad input, or when no
clip at all is usable.
"""


@command(epilog=EPILOG)
@click.argument("source", metavar="INPUT", type=click.Path(allow_dash=True))
@prepare_options
@raw_data_options
@common_options
def cli(
    source,
    sample_rate,
    out_dir,
    min_duration,
    max_duration,
    speaker,
    speakers_file,
    rejects,
    strict,
    fmt,
    jobs,
    overwrite,
    raw,
):
    """Check audio + transcripts and write a training manifest (JSONL) to stdout."""
    if sample_rate and not out_dir:
        raise click.UsageError("--sample-rate needs --out-dir (the resampled WAVs are written there)")
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise click.UsageError("--min-duration is larger than --max-duration")
    raw.check(out_dir, fmt)

    from voxlora import outputs
    from voxlora import rawdata_options as stages
    from voxlora.manifest import to_csm_mlx, to_voxcpm
    from voxlora.prepare import PrepareConfig, make_out_dir, prepare
    from voxlora.rejects import Tally
    from voxlora.speakers import SpeakerMap

    if raw.segment:  # the clips are cut and written first; prepare then checks them where they are
        config = PrepareConfig(None, None, None, None, speaker, jobs, strict)
    else:  # the cleaning done in place later is part of what an earlier run's output must match
        cleaning = asdict(raw.clean_config()) if raw.cleans else None
        config = PrepareConfig(
            sample_rate, out_dir, min_duration, max_duration, speaker, jobs, strict, clean=cleaning
        )
    speakers = SpeakerMap.load(speakers_file) if speakers_file else SpeakerMap()
    tally, counts, kept, held_out = Tally(), {}, [], []
    # a missing INPUT fails here, before the output folder is made
    entries = stages.before_prepare(source, raw, out_dir, sample_rate, min_duration, max_duration, tally)
    inputs = [] if source == "-" else [("the input", source)]
    for path in (rejects, raw.val_out):  # JSONL files, never the input, never another kind of file
        if path:
            outputs.check_file(path, outputs.JSONL_FILE, inputs, overwrite=overwrite)
    if out_dir:
        kind = outputs.wav_folder("mkmanifest")  # never the input's folder, never a folder of other files
        outputs.check_dir(out_dir, kind, inputs)
        make_out_dir(out_dir)  # before any clip: a folder that cannot be written is one line
        click.get_current_context().with_resource(output_lock(out_dir, "mkmanifest"))  # one writer
        outputs.mark_dir(out_dir, kind)
    journal = None
    if config.out_dir:  # prepare notes each clip it writes; the cleaning adds its result
        from voxlora.prepare_journal import Journal

        journal = Journal(config.out_dir)
        click.get_current_context().call_on_close(journal.close)
    records = prepare(entries, config, speakers, tally, journal)
    records = stages.after_prepare(records, raw, out_dir, tally, counts, jobs, journal)
    if raw.splits:  # whole recordings are held out: every clip is known first
        records, held_out = stages.finish(list(records), raw)
    if show_progress():
        from tqdm import tqdm

        records = tqdm(records, desc="mkmanifest", unit="clip")
    unpaired = []
    if fmt == "chatml":
        from voxlora.chatml import pair_by_speaker

        records = pair_by_speaker(records, unpaired)
    listed = []
    try:
        for record in records:
            kept.append(record)
            if fmt == "csm-mlx":
                listed.append(to_csm_mlx(record))
            else:
                emit(to_voxcpm(record) if fmt == "voxcpm" else record)
    finally:  # also after --strict stopped the run: what was rejected so far is worth having
        if rejects:
            tally.write_rejects(rejects)
        if speakers_file and len(speakers):
            speakers.save(speakers_file)
    if fmt == "csm-mlx":
        sys.stdout.write(json.dumps(listed, ensure_ascii=False, indent=1) + "\n")
        sys.stdout.flush()
    if unpaired:
        log.warning("no ChatML record for %d speakers with a single clip (no reference)", len(unpaired))
    if len(speakers):
        log.info("%s", speakers.describe())
    if tally.kept == 0 and not tally.rejected:  # no input at all (an empty file, an empty pipe): one line
        raise VoxloraError(f"{'<stdin>' if source == '-' else source}: no clips in the input (it is empty)")
    log.info("%s", tally.summary())
    if kept and fmt != "chatml":
        stages.summarize(kept + held_out, raw, counts)
    if tally.kept == 0 and tally.rejected:
        raise VoxloraError(f"{source}: no usable clip ({tally.summary()})")


main = run(cli)
