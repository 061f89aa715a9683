"""lora-train: from a JSONL manifest to a trained CSM adapter (metrics JSONL on stdout)."""

import os
from contextlib import contextmanager, nullcontext

import click
from click.core import ParameterSource
from voxlora.clikit import CONTEXT, common_options, emit, run, show_progress
from voxlora.config_file import config_option
from voxlora.lock import holding_for_children, output_lock
from voxlora.lora_options import FLAGS as LORA_FLAGS
from voxlora.train.config import TrainConfig, options_from_file, resolve
from voxlora.train.launch import ARGV, KeepsArgv
from voxlora.train.options import train_options
from voxlora.train.progress import Bars


@click.command(cls=KeepsArgv, context_settings=CONTEXT)  # keeps its command line for --nproc
@train_options
@config_option(translate=options_from_file)
@common_options
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
        raise click.UsageError(
            f"{', '.join(explicit)}: LoRA options describe a fresh adapter; not with --adapter or --full"
        )
    options["max_grad_norm"] = options["max_grad_norm"] or None
    config = TrainConfig(
        model=model, manifest=manifest, out=str(output), adapter=adapter and str(adapter), **options
    )
    if dry_run:  # nothing loaded, nothing written (voxlora.train.memory)
        from voxlora.train.memory import dry_run as estimate

        emit(estimate(resolve(config), settings))
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
            ctx.exit(
                launch(nproc, without_nproc(ctx.meta[ARGV]), output, ctx.meta.get("voxlora.debug", False))
            )
    from voxlora.backends import default_backend
    from voxlora.devices import check_device

    if (config.backend if config.backend != "auto" else default_backend()) == "torch":
        check_device(config.device)  # before anything loads, as every command does
    world = distributed.start(config.device)  # one of several processes under torchrun
    bars = Bars(show_progress() and world.is_main)
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


main = run(cli, finish_on_closed_stdout=True)  # | head -1 never costs the adapter

if __name__ == "__main__":  # torchrun -m voxlora.cli.lora_train
    main()
