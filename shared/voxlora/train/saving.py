"""Writing what lora-train trained: the adapter (and/or a merged model), or the whole model (--full).

Each write is staged in a hidden folder beside the destination and moved in file by file (atomic
renames), the file that makes the folder loadable last, so a kill part-way never leaves a new
config beside old weights. `require_room_for_checkpoints` refuses a run that could not save one.
"""

import logging
import math
import os
import shutil
from pathlib import Path

from voxlora.train.config import TrainConfig

log = logging.getLogger("voxlora")


def _move_files_into(src: Path, dest: Path, last: str) -> None:
    """Move every file of ``src`` into ``dest`` (each an atomic rename), ``last`` last; remove ``src``.

    ``last`` is the file that makes ``dest`` loadable (adapter_config.json, config.json). The old one
    goes first, so a kill part-way leaves ``dest`` without it (readers say it is missing; ``--resume``
    writes the result again), never a new config beside old weights or the reverse.
    """
    (dest / last).unlink(missing_ok=True)
    for f in sorted(src.iterdir(), key=lambda f: (f.name == last, f.name)):
        os.replace(f, dest / f.name)
    src.rmdir()


class Saver:
    """Writes the trained weights (adapter, merged model or whole model) into a folder."""

    def __init__(self, backend, model, adapter, folder: Path, config: TrainConfig):
        self.backend, self.model, self.adapter = backend, model, adapter
        self.folder, self.config = folder, config

    def current_adapter(self, step: int):
        from voxlora import __version__

        trained = self.backend.adapter_from_model(self.model, like=self.adapter)
        trained.meta["created_with"] = {
            **trained.meta.get("created_with", {}),
            "tool": "lora-train",
            "voxlora": __version__,
            "step": step,
            "train": self.config.to_dict(),
        }
        return trained

    def write(self, dest: Path, step: int, adapter_files: bool = True) -> None:
        """Into the existing folder ``dest``: adapter files and/or merged/ (LoRA), or the model (full)."""
        from voxlora.modelfolder import SIDE_FILES

        staging = dest / f".weights-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        if self.config.full:
            staging.mkdir()
            self.backend.save_model(self.model, staging)
            for name in SIDE_FILES:
                if (self.folder / name).is_file() and not (staging / name).exists():
                    shutil.copyfile(self.folder / name, staging / name)
            _move_files_into(staging, dest, last="config.json")
            return
        from voxlora.adapter import CONFIG, write_adapter

        adapter = self.current_adapter(step)
        if adapter_files:
            write_adapter(adapter, staging)
            extra = getattr(self.backend, "write_adapter_files", None)  # a family's own format beside
            if extra is not None:
                extra(adapter, staging)
            _move_files_into(staging, dest, last=CONFIG)
        if self.config.save_mode in ("full", "both"):
            from voxlora.merge import merge_folder

            merge_folder(self.folder, adapter, dest / "merged")


def require_room_for_checkpoints(out: Path, config: TrainConfig, folder: Path, adapter) -> None:
    """Refuse to start when ``out`` has no room for one checkpoint (estimated from the adapter size)."""
    from voxlora.diskspace import require_room
    from voxlora.train.checkpoint import estimate_bytes

    model_bytes = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    if config.full:
        from voxlora import families, targets

        shapes, layout = targets.base_shapes(folder), families.resolve(folder)
        trained = sum(math.prod(s) for n, s in shapes.items() if not layout.is_codec(n))
        needed = estimate_bytes(trained, config.optimizer, extra=model_bytes)
    else:
        merged = model_bytes if config.save_mode in ("full", "both") else 0
        needed = estimate_bytes(adapter.num_params(), config.optimizer, extra=merged)
    require_room(out, needed, "a checkpoint")
