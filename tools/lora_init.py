"""lora-init: write a fresh LoRA adapter for a model (A random, B zero: the model is unchanged)."""

import dataclasses
from pathlib import Path

import click
from voxlora.clikit import command, common_options, emit, log, run
from voxlora.lora_options import family_option, lora_options


@command()
@click.option(
    "--model", required=True, help="Base model: a folder (CSM, Higgs Audio v2 or VoxCPM layout), or a hub id."
)
@lora_options
@family_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for A's random init.")
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="Adapter folder to write."
)
@click.option("--dry-run", is_flag=True, help="Print the plan (modules, parameters, share of the base) only.")
@common_options
def cli(model, settings, family, seed, output, dry_run):
    """Write a fresh adapter (peft's layout) for MODEL, or with --dry-run show what it would train.

    The plan comes from the checkpoint's safetensors headers alone, so --dry-run is instant even
    for CSM-1B. all-linear means the linears of every layer; heads are targeted only when
    named (codebook0_head/lm_head, projection). The codec is never targeted. The model family
    (csm, higgs-audio-v2, voxcpm) comes from config.json; --family overrides it.

    \b
    lora-init --model sesame/csm-1b -r 16 --alpha 32 --targets attn --dry-run
    lora-init --model sesame/csm-1b --targets all-linear --layers 8-15 -o runs/a0 | lora-inspect --json -
    lora-init --model higgs-v2 --targets attn,audio-ffn -o runs/h0
    lora-init --model VoxCPM1.5 --component all --targets attn,proj -o runs/v0
    """
    from voxlora import families, targets
    from voxlora.modelfolder import base_name, model_dir

    if not dry_run and output is None:
        raise click.UsageError("give -o/--output ADAPTER (or --dry-run)")
    folder = model_dir(model)
    kind = families.resolve(folder, family)
    settings = dataclasses.replace(settings, family=kind.name)
    shapes = targets.base_shapes(folder)
    selection = targets.select(shapes, settings, kind)
    params = selection.lora_params(settings.rank) + selection.trained_params()
    base = targets.base_params(shapes, kind)
    record = {
        "family": kind.name,
        "modules": len(selection.lora),
        "params": params,
        "base_params": base,
        "share": round(params / base, 6) if base else None,
        **targets.describe(selection.lora, kind),
        "trained": sorted(selection.trained),
        "settings": settings.to_dict(),
    }
    record.pop("other")
    if dry_run:
        emit({"model": model, "dry_run": True, **record, "module_paths": list(selection.lora)})
        return
    from voxlora.adapter import write_adapter  # torch: only now that a file is written
    from voxlora.peft_bridge import new_adapter_for

    adapter = new_adapter_for(folder, settings, seed=seed, base_model=base_name(model))
    adapter.meta["created_with"]["tool"] = "lora-init"
    write_adapter(adapter, output)
    log.info(
        "wrote %s: %d modules, %d parameters (%.3f%% of the base)",
        output,
        len(adapter.lora),
        params,
        100 * params / base if base else 0,
    )
    emit({"adapter": str(output), "model": model, **record})


main = run(cli)
