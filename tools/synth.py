"""synth: speech from text with a CSM model, a LoRA adapter (applied or merged), speakers and context."""

import os
import sys

import click
from voxlora.adapter_base import allow_other_base_option
from voxlora.clikit import command, common_options, emit, overwrite_option, run, show_progress
from voxlora.config_file import config_option
from voxlora.errors import VoxloraError
from voxlora.synth.config import SynthConfig
from voxlora.synth.options import synth_options

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
@synth_options
@overwrite_option
@allow_other_base_option
@config_option()
@common_options
def cli(text, contexts, context_texts, output, out_dir, strict, overwrite, **options):
    batch = text in (None, "-")
    if len(contexts) != len(context_texts):
        raise click.UsageError(f"{len(contexts)} --context clips but {len(context_texts)} --context-text")
    if not batch and not (output or out_dir):
        raise click.UsageError("give -o OUT.wav (or --out-dir) for the clip")
    if batch and output:
        raise click.UsageError('-o is for one TEXT; reading stdin, use --out-dir or an "out" in each record')

    import itertools

    from tqdm import tqdm
    from voxlora import outputs
    from voxlora.adapter import SIDECAR
    from voxlora.adapter_speakers import adapter_meta, pick_speaker
    from voxlora.devices import check_device
    from voxlora.synth.requests import ContextClip, make_request, read_requests
    from voxlora.synth.stream import speak_stream

    sidecar = options["adapter"] and os.path.join(options["adapter"], SIDECAR)  # the adapter's voxlora.json
    options["speaker"] = pick_speaker(options["speaker"], adapter_meta(sidecar))
    config = SynthConfig(
        context=[ContextClip(a, t) for a, t in zip(contexts, context_texts, strict=True)], **options
    )
    check_device(config.device, config.resolved_backend())  # before anything loads
    if config.batch_size > 1 and config.resolved_backend() == "mlx":
        raise click.UsageError("--batch-size above 1 needs --backend torch (MLX speaks one clip at a time)")
    inputs = [("a --context clip", c) for c in contexts]
    if output:
        outputs.check_file(output, outputs.WAV_FILE, inputs, overwrite=overwrite)
    if out_dir:
        kind = outputs.wav_folder("synth")
        outputs.check_dir(out_dir, kind, inputs + [("the --adapter folder", config.adapter)])
    if batch:
        if sys.stdin.isatty():
            click.echo("synth: reading lines of text from stdin (Ctrl-D to end)", err=True)
        requests = read_requests(sys.stdin.buffer, config, out_dir)  # bytes: each line decoded alone
        first = next(requests, None)
        if first is None:  # no usable input at all: one line, before the model loads
            raise VoxloraError("<stdin>: no text to speak (stdin is empty)")
        requests = itertools.chain([first], requests)
    else:  # checked before the model loads: a bad TEXT fails at once
        requests = iter([make_request({"text": text}, 1, config, out_dir, "", out=output)])
    from voxlora.synth.synthesizer import Synthesizer  # torch: only now that the checks are done

    if config.adapter:  # made for this base? (checked before the model loads)
        Synthesizer.check_adapter_base(config, config.adapter)
    if out_dir:  # what says "synth wrote this folder" next time
        os.makedirs(out_dir, exist_ok=True)
        outputs.mark_dir(out_dir, kind)

    def check_out(request):  # a record's own "out": the single-file rule
        if batch and request.out is not None:
            try:
                clips = [("a context clip", c.audio) for c in request.context]
                outputs.check_file(request.out, outputs.WAV_FILE, clips, overwrite=overwrite)
            except VoxloraError as e:
                raise VoxloraError(f"{request.where}: {e}" if request.where else str(e)) from None

    synth = Synthesizer(config)
    failed = made = 0
    with tqdm(unit="clip", file=sys.stderr, disable=not (batch and show_progress())) as bar:
        for result in speak_stream(synth, requests, config.batch_size, check_out):
            if isinstance(result, VoxloraError):  # a bad stdin line, or a clip that failed
                if strict or not batch:
                    raise result
                failed += 1
                click.echo(f"Error: {result}", err=True)
            else:
                emit(result)
                made += 1
            bar.update(1)
    if failed:  # every good line was spoken; the exit code still tells a cron job something failed
        raise VoxloraError(
            f"{failed} of {failed + made} lines failed (reported above); the other clips were written"
        )


main = run(cli, finish_on_closed_stdout=True)  # | head never costs the clips
