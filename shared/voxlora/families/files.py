"""The weight files of a model folder for the file tools (lora-init, lora-inspect, lora-merge).

safetensors (one file or an index's shards, `models.csm.weight_files`) wherever they exist; else
the torch pickle a family is known to ship (`Family.pickle_weights`: VoxCPM-0.5B's
pytorch_model.bin), read as tensors only (`voxlora.tensor_pickle`). Other pickle-only folders are
refused as before.
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
