"""lora-train: from a JSONL manifest to a trained CSM adapter (metrics JSONL on stdout)."""

import os
from contextlib import contextmanager, nullcontext
from pathlib import Path

import click
from click.core import ParameterSource
from voxlora.adapter_base import allow_other_base_option
from voxlora.clikit import CONTEXT, common_options, emit, overwrite_option, run, show_progress
from voxlora.codec_option import codec_option
from voxlora.config_file import config_option
from voxlora.lock import holding_for_children, output_lock
from voxlora.lora_options import FLAGS as LORA_FLAGS
from voxlora.lora_options import lora_options
from voxlora.train.config import CHOICES, FULL_LR, LORA_LR, TrainConfig, options_from_file, resolve
from voxlora.train.launch import ARGV, KeepsArgv

D = TrainConfig()  # every default lives in TrainConfig
POSITIVE, COUNT = click.IntRange(min=1), click.IntRange(min=0)  # bad values are usage errors (exit 2)


def opt(*decls, **kwargs):
    """click.option whose default (when it has one) is TrainConfig's."""
    name = decls[-1].lstrip("-").replace("-", "_")
    if getattr(D, name, None) is not None and not (kwargs.get("is_flag") or kwargs.get("required")):
        kwargs.setdefault("default", getattr(D, name))
        kwargs.setdefault("show_default", True)
    return click.option(*decls, **kwargs)


def choice(name: str, **kwargs):
    return opt("--" + name.replace("_", "-"), type=click.Choice(CHOICES[name]), **kwargs)


# fmt: off
@click.command(cls=KeepsArgv, context_settings=CONTEXT)  # keeps its command line for --nproc
@opt("--model", required=True, help="Base model: a folder in sesame/csm-1b's layout, or a hub id.")
@opt("--manifest", required=True, help="Training manifest (JSONL); - reads stdin whole first.")
@opt("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
     help="Output folder: the adapter, metrics.jsonl, loss.png, step_NNNNNNN/ checkpoints.")
@opt("--adapter", type=click.Path(path_type=Path), help="Start from this adapter (e.g. lora-init's).")
@lora_options
@opt("--full", is_flag=True, help="Train every weight except the codec (no adapter).")
@opt("--epochs", type=POSITIVE, help="Passes over the manifest [default: from the data, 5-50].")
@opt("--max-steps", type=POSITIVE, help="Optimizer steps (overrides --epochs).")
@opt("--batch-size", type=POSITIVE, help="Clips per micro-batch.")
@opt("--grad-accum", type=POSITIVE, help="Micro-batches per optimizer step.")
@opt("--max-batch-frames", type=POSITIVE, help="Length-sorted batches of at most N padded positions (not --batch-size).")
@opt("--lr", type=click.FloatRange(min=0, min_open=True), help=f"Peak learning rate [default: {LORA_LR} LoRA, {FULL_LR} --full].")
@opt("--warmup-steps", type=COUNT, help="Linear warm-up steps [default: --warmup-fraction of the run].")
@opt("--warmup-fraction", type=click.FloatRange(0, 1, max_open=True), help="Warm-up's share of the steps when --warmup-steps is not given.")
@choice("lr_schedule")
@choice("optimizer")
@opt("--weight-decay", type=click.FloatRange(min=0))
@opt("--max-grad-norm", type=click.FloatRange(min=0), help="0: no clipping.")
@opt("--seed", type=click.IntRange(min=0))
@opt("--decoder-frame-fraction", type=click.FloatRange(0, 1, min_open=True),
     help="Share of frames the depth decoder learns on (1: all) [default: from the data, 1 for small sets].")
@opt("--default-speaker", type=click.IntRange(min=0), help='CSM speaker for records without "speaker".')
@choice("backend", help="torch, or mlx (Apple silicon; mlx[cpu] elsewhere); auto: mlx on Apple silicon when installed.")
@choice("dtype", help="Compute precision (autocast); trained weights stay fp32. auto: bf16 on a CUDA GPU, else fp32.")
@opt("--device", help="auto, cpu, cuda, cuda:N (one GPU of several) or mps.")
@opt("--val-manifest", help="Validation manifest (JSONL).")
@opt("--val-every", type=COUNT, help="Validate every N steps (0: only at the end).")
@opt("--log-every", type=POSITIVE, help="Steps per metrics line.")
@opt("--save-every", type=COUNT, help="Checkpoint into OUT/step_NNNNNNN/ every N steps (0: by time only).")
@opt("--save-minutes", type=click.FloatRange(min=0), help="Also a checkpoint after this many minutes since the last (0: never).")
@opt("--keep-last", type=POSITIVE, help="Checkpoints kept.")
@choice("save_mode", help="lora: the adapter; full: a merged model (OUT/merged); both.")
@opt("--cache-dir", help="Mimi codes cache [default: voxlora-codes/ beside OUT]; safe to delete.")
@opt("--sample-every", type=COUNT, help="Speak the sample texts into OUT/samples/step_NNNNNNN/ every N steps (scored with [eval]).")
@opt("--sample-texts", type=click.Path(dir_okay=False), help="Sample texts, one per line [default: the first two of the val (else train) manifest].")
@opt("--sample-max-seconds", type=click.FloatRange(min=0, min_open=True), help="Longest sample clip.")
@opt("--keep-best", type=click.Choice(["val_loss", "wer", "speaker_sim"]), help="Keep OUT/best/: the adapter at the best value so far.")
@opt("--resume", is_flag=True, help="Continue from the newest checkpoint in OUT (same settings).")
@opt("--strict", is_flag=True, help="Stop at the first bad record or clip (default: warn, skip it).")
@opt("--speakers", type=click.Path(dir_okay=False), metavar="FILE",
     help='Speaker names ({"name": id} JSON) to record in the adapter, beside the ids it trained on.')
@opt("--tensorboard", metavar="DIR", help="Also write the metrics (and audio samples) as TensorBoard events here.")
@opt("--wandb", metavar="PROJECT", help="Also log the metrics to this Weights & Biases project (needs wandb).")
@overwrite_option
@allow_other_base_option
@codec_option
@click.option("--reference", type=click.Choice(["auto", "none"]), default=D.reference, show_default=True,
              help="Higgs: pair each target with another clip of its speaker as the voice reference (auto).")
@opt("--text-loss", is_flag=True, help="Higgs: add the text head's loss (the model's text_lm_head).")
@click.option("--grad-checkpointing/--no-grad-checkpointing", default=None,
              help="Recompute activations in backward (less memory) [default: on for models over 2B].")
@click.option("--quantize", type=click.Choice(["4bit"]), default=None,
              help="QLoRA: load the frozen base in 4 bits (bitsandbytes; CUDA only).")
@click.option("--dry-run", is_flag=True, help="Print the estimated peak memory for these settings; load nothing.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes on this machine, one GPU each (torchrun; see the README for several machines).")
@config_option(translate=options_from_file)
@common_options
# fmt: on
def cli(model, manifest, output, adapter, settings, nproc, dry_run, **options):
    """Fine-tune CSM on a manifest: LoRA (default), LoRA plus embeddings, or --full.

    Prints one JSON line of metrics every --log-every steps (also kept in OUT/metrics.jsonl), then
    a last line naming the result, e.g. {"adapter": "runs/voice", "step": 500, ...}. OUT holds an
    adapter that PeftModel.from_pretrained loads, loss.png and the resolved config.

    Bad records and clips are reported one line each and skipped (--strict: exit 1). SIGTERM or
    Ctrl-C finish the step, save a checkpoint and exit 143 / 130; --resume continues from it.

    \b
    lora-train --model sesame/csm-1b --manifest train.jsonl -o runs/voice --max-steps 500
    lora-init --model M -r 16 --targets attn -o a0 && lora-train --model M --adapter a0 --manifest t.jsonl -o a1
    hf-fetch ./corpus --out-dir c | mkmanifest - --sample-rate 24000 --out-dir w | lora-train --model M --manifest - -o a2
    """
    from voxlora.train import run_folder

    source = click.get_current_context().get_parameter_source
    explicit = ["--" + f.replace("_", "-") for f in LORA_FLAGS if source(f) == ParameterSource.COMMANDLINE]
    if explicit and (adapter or options["full"]):
        raise click.UsageError(f"{', '.join(explicit)}: LoRA options describe a fresh adapter; not with --adapter or --full")
    options["max_grad_norm"] = options["max_grad_norm"] or None
    config = TrainConfig(model=model, manifest=manifest, out=str(output), adapter=adapter and str(adapter), **options)
    if dry_run:  # nothing loaded, nothing written (voxlora.train.memory)
        from voxlora.train.memory import dry_run as estimate
        from voxlora.train.memory import plan

        resolved = resolve(config)
        record = estimate(resolved, settings)
        if record["family"] == "csm":  # CSM's own estimate, from the manifest's longest clip
            record.update(plan(resolved, settings))
        emit(record)
        return
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone owns OUT
        resolve(config)  # bad option values and combinations: usage errors, before torch is imported
        run_folder.check(output, config)  # the output folder's rule, as early
        from voxlora.textsniff import check_manifest_file

        for path in (manifest, config.val_manifest):  # a WAV given as a manifest: one line, at once
            if path:
                check_manifest_file(path)

    from voxlora.train import distributed
    from voxlora.train.recipe import run as run_training
    from voxlora.train.signals import Interrupted, Stopped, StopSignals, Terminated

    if nproc > 1:  # torchrun on this machine, each process running this command less --nproc
        from voxlora.train.launch import launch, without_nproc

        if distributed.under_torchrun():
            raise click.UsageError("--nproc: already one of several processes (torchrun); drop --nproc")
        distributed.check_config(config, distributed.World(size=nproc))
        ctx = click.get_current_context()
        with output_lock(output, "lora-train"), holding_for_children():
            ctx.exit(launch(nproc, without_nproc(ctx.meta[ARGV]), output, ctx.meta.get("voxlora.debug", False)))
    from voxlora.backends import default_backend
    from voxlora.devices import check_device

    if (config.backend if config.backend != "auto" else default_backend()) == "torch":
        check_device(config.device)  # before anything loads, as every command does
    world = distributed.start(config.device)  # one of several processes under torchrun
    bars = _Bars(show_progress() and world.is_main)
    try:
        lock = output_lock(output, "lora-train") if world.is_main else nullcontext()
        with lock, _trackers(config, world) as trackers, StopSignals() as stop:
            for record in run_training(config, settings, on_clip=bars.clip, on_step=bars.step, stop=stop,
                                       world=world, on_total=bars.total):  # fmt: skip
                emit(record)
                trackers.log(record)
    except Stopped as e:
        bars.close()
        if world.is_main:
            click.echo(f"lora-train: {e}", err=True)
        click.get_current_context().exit(e.exit_code)
    except Interrupted as e:  # a second signal during training: the checkpoints on disk stand
        bars.close()
        if world.is_main:
            click.echo(f"lora-train: {e.explain(output)}", err=True)
        click.get_current_context().exit(e.exit_code)
    except Terminated:
        bars.close()
        click.echo("lora-train: terminated before training started; nothing saved", err=True)
        click.get_current_context().exit(143)
    finally:
        bars.close()


@contextmanager
def _trackers(config, world):
    """TensorBoard and wandb (rank 0), mirroring the metrics lines; nothing when neither is asked for."""
    from voxlora.train.trackers import Trackers

    asked = world.is_main and (config.tensorboard or config.wandb)
    trackers = Trackers(config.tensorboard, config.wandb, config.to_dict()) if asked else Trackers()
    try:
        yield trackers
    finally:
        trackers.close()


class _Bars:
    """tqdm bars on stderr (clips encoded, steps trained: total, rate and ETA), only on a terminal."""

    def __init__(self, enabled: bool, file=None):
        self.enabled, self.bars, self.file = enabled, {}, file

    def _update(self, name: str, unit: str, total=None, initial=0, n=1) -> None:
        if self.enabled:
            from tqdm import tqdm

            if name not in self.bars:
                self.bars[name] = tqdm(desc=name, unit=unit, leave=False, total=total, initial=initial,
                                       file=self.file, dynamic_ncols=True)  # fmt: skip
            self.bars[name].update(n)

    def total(self, steps: int, done: int) -> None:
        """The steps bar knows the run's length (and a resumed run's steps done): rate and ETA."""
        self._update("train", "step", total=steps, initial=done, n=0)

    def clip(self, n: int) -> None:
        self._update("codes", "clip")

    def step(self, state) -> None:
        self._update("train", "step")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


main = run(cli, finish_on_closed_stdout=True)  # | head -1 never costs the adapter

if __name__ == "__main__":  # torchrun -m voxlora.cli.lora_train
    main()
