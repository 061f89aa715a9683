"""The weight files of a model folder for the file tools (lora-init, lora-inspect, lora-merge).

safetensors (one file or an index's shards, `models.csm.weight_files`) wherever they exist; else
the torch pickle a family is known to ship (`Family.pickle_weights`: VoxCPM-0.5B's
pytorch_model.bin), read as tensors only (`voxlora.tensor_pickle`). Other pickle-only folders are
refused as before.

`tensor_shapes` is what the file tools compare adapters with: the stored names and shapes, except
for a csm-1b-mlx folder (``ckpt.safetensors``), seen under transformers' CSM names
(`voxlora.families.csm.mlx_layout`), so one adapter layout fits both CSM layouts.
"""

from pathlib import Path

from voxlora import families
from voxlora.errors import VoxloraError


def tensor_files(model, family: str | None = None) -> list[Path]:
    from voxlora.modelfolder import model_dir, weight_files

    folder = model_dir(model)
    try:
        return weight_files(folder)
    except VoxloraError:
        try:
            kind = families.resolve(folder, family)
        except VoxloraError:
            kind = None
        for name in kind.pickle_weights if kind else ():
            if (folder / name).is_file():
                return [folder / name]
        raise


def layout(model) -> str:
    """ "csm-1b-mlx" for a folder in that layout, else "transformers" (the stored names are the model's)."""
    from voxlora.modelfolder import is_mlx_ckpt, model_dir

    return "csm-1b-mlx" if is_mlx_ckpt(model_dir(model)) else "transformers"


def tensor_shapes(model, family: str | None = None) -> dict[str, tuple[int, ...]]:
    """{name: shape} of a model folder's tensors, from the headers alone; a csm-1b-mlx folder's under
    transformers' names (its one audio table under the name a tied CSM stores it)."""
    from voxlora.safetensors_stream import shapes

    stored = shapes(tensor_files(model, family))
    if layout(model) == "csm-1b-mlx":
        from voxlora.families.csm import mlx_layout

        return mlx_layout.view_shapes(stored)
    return stored
