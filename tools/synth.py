"""synth: speech from text with a CSM model, a LoRA adapter (applied or merged), speakers and context."""

import sys

import click
from voxlora.backends import BACKENDS
from voxlora.clikit import command, common_options, emit, run, show_progress
from voxlora.errors import VoxloraError
from voxlora.synth.config import SynthConfig

D = SynthConfig()  # the defaults (this import does not load torch)
HELP = """Speak TEXT with a CSM model (and a LoRA adapter) into a WAV; print one JSONL record per clip.

\b
  synth --model sesame/csm-1b --adapter runs/voice "Hello there." -o hello.wav
  synth --model sesame/csm-1b --context ref.wav --context-text "What ref says." "New text." -o out.wav
  synth --model sesame/csm-1b --out-dir gen < lines.txt | mkmanifest -
  synth --backend mlx --model sesame/csm-1b "Hello there." -o hello.wav
  synth --model openbmb/VoxCPM2 --adapter runs/vox --cfg 2 --timesteps 10 "Hello there." -o v.wav

Without TEXT (or with TEXT "-"), each stdin line is a clip: plain text, or a JSONL record with
"text" and optional "speaker", "adapter" (a folder, "base" or null), "out", "seed" and "context"
([{"audio", "text", "speaker"}]). One process serves every adapter the records name, loading the
base model once and each adapter once.
"""


@command(help=HELP)
@click.argument("text", required=False)
@click.option("--model", "-m", default=D.model, show_default=True, help="Hub id or local CSM folder.")
@click.option(
    "--backend",
    type=click.Choice(["auto", *BACKENDS]),
    default=D.backend,
    show_default=True,
    help="torch or mlx (auto: mlx on Apple silicon when installed, else torch).",
)
@click.option("--adapter", "-a", type=click.Path(), help="LoRA adapter folder (peft, voxlora or mlx-lm).")
@click.option("--merge", is_flag=True, help="Merge the adapter into the weights in memory (same audio).")
@click.option(
    "--speaker", "-s", type=click.IntRange(min=0), default=D.speaker, show_default=True, help="Speaker id."
)
@click.option("--context", "contexts", multiple=True, type=click.Path(), help="Reference clip (repeatable).")
@click.option("--context-text", "context_texts", multiple=True, help="Transcript of each --context clip.")
@click.option(
    "--max-seconds", type=float, default=D.max_seconds, show_default=True, help="Longest clip to generate."
)
@click.option(
    "--temperature", type=click.FloatRange(min=0), default=D.temperature, show_default=True, help="0: greedy."
)
@click.option("--top-k", type=click.IntRange(min=0), default=D.top_k, show_default=True, help="0: no top-k.")
@click.option(
    "--cfg", type=click.FloatRange(min=0), default=D.cfg, show_default=True, help="VoxCPM: guidance value."
)
@click.option(
    "--timesteps",
    type=click.IntRange(min=1),
    default=D.timesteps,
    show_default=True,
    help="VoxCPM: diffusion steps.",
)
@click.option("--seed", type=int, default=D.seed, show_default=True, help="Each clip is seeded with it.")
@click.option(
    "--sample-rate", type=click.IntRange(min=1000), help="Resample the WAVs (default: the model's)."
)
@click.option(
    "--device",
    default=D.device,
    show_default=True,
    help="torch: cpu, cuda, cuda:1, ... (auto: cuda if any); mlx: cpu or gpu.",
)
@click.option(
    "--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=D.dtype, show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The WAV to write (with TEXT).")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Folder for numbered WAVs (stdin mode).")
@click.option(
    "--strict", is_flag=True, help="Stdin mode: stop at the first bad line (default: report it, go on)."
)
@common_options
def cli(text, contexts, context_texts, output, out_dir, strict, **options):
    batch = text in (None, "-")
    if len(contexts) != len(context_texts):
        raise click.UsageError(f"{len(contexts)} --context clips but {len(context_texts)} --context-text")
    if not batch and not (output or out_dir):
        raise click.UsageError("give -o OUT.wav (or --out-dir) for the clip")
    if batch and output:
        raise click.UsageError('-o is for one TEXT; reading stdin, use --out-dir or an "out" in each record')

    from tqdm import tqdm
    from voxlora.synth.requests import ContextClip, make_request, read_requests
    from voxlora.synth.synthesizer import Synthesizer

    config = SynthConfig(
        context=[ContextClip(a, t) for a, t in zip(contexts, context_texts, strict=True)], **options
    )
    if batch:
        if sys.stdin.isatty():
            click.echo("synth: reading lines of text from stdin (Ctrl-D to end)", err=True)
        requests = read_requests(sys.stdin.buffer, config, out_dir)  # bytes: each line decoded alone
    else:  # checked before the model loads: a bad TEXT fails at once
        requests = iter([make_request({"text": text}, 1, config, out_dir, "", out=output)])

    synth = Synthesizer(config)
    failed = made = 0
    with tqdm(unit="clip", file=sys.stderr, disable=not (batch and show_progress())) as bar:
        for request in requests:
            try:
                if isinstance(request, VoxloraError):  # a bad stdin line
                    raise request
                emit(synth.speak(request).record)
                made += 1
            except VoxloraError as e:
                if strict or not batch:
                    raise
                failed += 1
                click.echo(f"Error: {e}", err=True)
            bar.update(1)
    if failed:  # every good line was spoken; the exit code still tells a cron job something failed
        raise VoxloraError(
            f"{failed} of {failed + made} lines failed (reported above); the other clips were written"
        )


main = run(cli)
