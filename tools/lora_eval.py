"""lora-eval: did the fine-tune work? WER, speaker similarity and length of base, adapters and real speech."""

import sys
from pathlib import Path

import click
from voxlora.backends import BACKENDS
from voxlora.clikit import command, common_options, emit, log, overwrite_option, run
from voxlora.config_file import config_option
from voxlora.synth.config import SynthConfig

D = SynthConfig()  # synth's defaults (no torch import)
HELP = """Score speech: base against adapters against the real recordings, per clip and in a table.

\b
  lora-eval --model sesame/csm-1b --adapter runs/voice --manifest held_out.jsonl -o report/
  synth --model sesame/csm-1b --adapter runs/voice --out-dir gen < lines.txt \\
    | lora-eval --reference held_out.jsonl - -o report/

With --model and --manifest, every held-out record's text is spoken by the base and by each
--adapter (same seed, speaker and context) and scored beside its real recording. With INPUT (a
JSONL of clips, or - for stdin: what synth prints), existing clips are scored against the
--reference speakers. One JSONL record per clip on stdout (wer, cer, speaker_sim, duration, ended,
...), the summary table on stderr, and REPORT/index.html to listen side by side.
"""


@command(help=HELP)
@click.argument("clips", required=False, type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--model", "-m", help="CSM model to speak with (hub id or folder): speak-and-score mode.")
@click.option(
    "--adapter", "-a", "adapters", multiple=True, type=click.Path(), help="Adapter folder (repeatable)."
)
@click.option(
    "--manifest", type=click.Path(dir_okay=False), help="Held-out JSONL: text, real audio, speaker."
)
@click.option(
    "--reference", type=click.Path(dir_okay=False), help="Real recordings (JSONL) for speaker similarity."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="REPORT folder: index.html, audio/.",
)
@click.option(
    "--asr", help="Whisper id or folder (default: pocketsphinx's bundled US-English model, offline)."
)
@click.option("--speaker-encoder", help="transformers x-vector id or folder (default: resemblyzer's GE2E).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N held-out records.")
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default=D.backend, show_default=True)
@click.option("--speaker", "-s", type=click.IntRange(min=0), default=D.speaker, show_default=True)
@click.option("--context", "contexts", multiple=True, type=click.Path(), help="Reference clip (repeatable).")
@click.option("--context-text", "context_texts", multiple=True, help="Transcript of each --context clip.")
@click.option("--max-seconds", type=float, default=D.max_seconds, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=D.temperature, show_default=True)
@click.option("--top-k", type=click.IntRange(min=0), default=D.top_k, show_default=True)
@click.option("--seed", type=int, default=D.seed, show_default=True, help="The same for every system.")
@click.option("--device", default=D.device, show_default=True, help="cpu, cuda, ... (speaking and scoring).")
@click.option(
    "--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=D.dtype, show_default=True
)
@overwrite_option
@config_option()
@common_options
def cli(
    clips, model, adapters, manifest, reference, output, asr, speaker_encoder, limit, overwrite, **options
):
    speak = model is not None or manifest is not None
    if speak and clips:
        raise click.UsageError("give --model with --manifest (speak and score) or CLIPS to score, not both")
    if speak and not (model and manifest):
        raise click.UsageError("--model and --manifest go together (speak each held-out text)")
    if speak and output is None:
        raise click.UsageError("speaking needs -o REPORT/ (the clips are written there)")
    if not speak and clips is None:
        raise click.UsageError(
            "nothing to score: give CLIPS (a JSONL file, or - for stdin) or --model and --manifest"
        )
    if adapters and not speak:
        raise click.UsageError("--adapter is for speaking (--model); scored clips name their own adapter")
    contexts, texts = options.pop("contexts"), options.pop("context_texts")
    if len(contexts) != len(texts):
        raise click.UsageError(f"{len(contexts)} --context clips but {len(texts)} --context-text")

    from voxlora import outputs
    from voxlora.evaluation import evaluate

    if output is not None:
        ins = [("the --manifest", manifest), ("the --reference", reference), ("the base model", model)]
        outputs.check_dir(
            output, evaluate.report_kind(), [*ins, *(("an --adapter", a) for a in adapters)], overwrite
        )
    held_out = evaluate.read_records(manifest, limit) if speak else []
    references = evaluate.read_records(reference) if reference else []
    if not speak and clips == "-" and sys.stdin.isatty():
        click.echo("lora-eval: reading clip records from stdin (Ctrl-D to end)", err=True)
    result = evaluate.run(
        speak=speak,
        synth=dict(model=model, context=list(zip(contexts, texts, strict=True)), **options)
        if speak
        else None,
        adapters=list(adapters),
        held_out=held_out,
        references=references,
        clips=None if speak else evaluate.read_records(clips),
        output=output,
        asr=asr,
        speaker_encoder=speaker_encoder,
        device=options["device"],
    )
    for record in result.records:
        emit(record)
    click.echo(result.table, err=True)
    for line in result.findings:
        click.echo(line, err=True)
    if output is not None:
        log.info(f"report: {output / 'index.html'}")


main = run(cli)
