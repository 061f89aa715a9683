"""lora-merge: bake an adapter into its base, giving a standalone model folder (no peft needed)."""

from pathlib import Path

import click
from voxlora.adapter_base import allow_other_base_option
from voxlora.clikit import command, common_options, emit, log, run
from voxlora.lock import output_lock
from voxlora.lora_options import family_option

DTYPES = ("bf16", "fp16", "fp32")


@command()
@click.option(
    "--model", required=True, help="Base model: a folder (CSM, Higgs Audio v2 or VoxCPM layout), or a hub id."
)
@click.option(
    "--adapter", required=True, help="Adapter folder (voxlora, peft, mlx-lm or VoxCPM lora_weights)."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model folder to write (an earlier lora-merge output there is replaced atomically; "
    "never the base, the adapter, or a folder holding other files).",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    help="Cast the weights (default: keep the base's; the codec always keeps its dtype).",
)
@family_option
@allow_other_base_option
@common_options
def cli(model, adapter, output, dtype, family, allow_other_base):
    """Merge ADAPTER into MODEL: W + scaling * B @ A for every LoRA module, trained embeddings
    written in, config/tokenizer/processor files copied (and VoxCPM's audiovae.pth). Loads like
    the base (CSM: CsmForConditionalGeneration.from_pretrained and synth --model).

    Streams tensor by tensor over the safetensors shards, so memory stays near the largest
    tensor. An adapter with keys that do not fit the base is refused with the full list.

    \b
    lora-merge --model sesame/csm-1b --adapter runs/voice -o models/voice --dtype bf16
    """
    from voxlora import outputs
    from voxlora.modelfolder import model_dir

    folder = model_dir(model)  # a hub id resolved once
    inputs = [("the base model's folder", folder), ("the adapter folder", adapter)]
    outputs.check_dir(output, outputs.MERGED, inputs)  # before torch loads; merge_folder checks it again

    from voxlora.adapter import base_fingerprint, base_identity, read_adapter
    from voxlora.adapter_base import check_base
    from voxlora.merge import merge_folder
    from voxlora.modelfolder import torch_dtype

    click.get_current_context().with_resource(output_lock(output, "lora-merge"))  # one writer
    loaded = read_adapter(adapter)
    check_base(
        loaded,
        adapter,
        model,
        lambda: base_fingerprint(folder),
        allow=allow_other_base,
        identity=lambda: base_identity(folder),
    )
    summary = merge_folder(
        model, loaded, output, dtype=torch_dtype(dtype) if dtype else None, where=adapter, family=family
    )
    log.info(
        "wrote %s: %d tensors, %d LoRA modules merged, %d replaced",
        output,
        summary["tensors"],
        summary["merged"],
        summary["replaced"],
    )
    emit({"model": str(output), "base": model, "adapter": adapter, "dtype": dtype, **summary})


main = run(cli)
