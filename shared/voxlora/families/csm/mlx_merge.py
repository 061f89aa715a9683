"""lora-merge onto a csm-1b-mlx base: a standalone ``ckpt.safetensors`` in the base's own layout.

The adapter speaks transformers' CSM names and conventions (`mlx_layout`); the base keeps its stored
names, dtypes and order, and the merged file is read by whatever read the base (csm-mlx's strict
``load_weights``, voxlora's MLX backend). Tensor by tensor, as `voxlora.merge` does: untouched
tensors are copied unread; a touched q/k projection is permuted to transformers' halves convention,
merged (``W + scaling * B @ A``), and permuted back to Sesame's interleaved rows, so the delta lands
on the rows it was trained for. The layout has one audio table for the backbone and the depth
decoder: an adapter that trains it (peft unties the two) cannot be merged into it, and is refused.
"""

import logging
import shutil
from pathlib import Path

from voxlora import lora, outputs
from voxlora.adapter import Adapter, require_fits, with_base_names
from voxlora.atomic import atomic_dir
from voxlora.errors import VoxloraError
from voxlora.families.csm import FAMILY, mlx_layout
from voxlora.safetensors_stream import Stored, dtypes, iter_tensors, read_header, write_streaming

log = logging.getLogger("voxlora.merge")


def merge_ckpt(
    src: Path, adapter: Adapter, out: Path, dtype=None, where: str = "adapter", base: str = ""
) -> dict:
    """Write csm-1b-mlx folder ``src`` with ``adapter`` merged to the folder ``out`` (atomically).

    ``dtype`` casts every floating tensor (None keeps the base's; the layout has no codec).
    Returns the summary `voxlora.merge.merge_folder` returns.
    """
    from voxlora import targets

    file = src / mlx_layout.CKPT
    header, metadata, _ = read_header(file)
    stored = {name: tuple(info["shape"]) for name, info in header.items()}
    view = {name: mlx_layout.view_name(name) for name in stored}
    shapes = targets.with_tied(mlx_layout.view_shapes(stored))
    adapter = with_base_names(adapter, shapes, FAMILY)
    require_fits(adapter, shapes, where)
    audio = sorted({mlx_layout.BACKBONE_AUDIO, mlx_layout.DECODER_AUDIO} & set(adapter.trained))
    if audio:
        raise VoxloraError(
            f"{where}: trains {', '.join(audio)}, but the csm-1b-mlx layout keeps one audio table for the "
            "backbone and the depth decoder; merge it into the sesame/csm-1b-layout model instead"
        )
    config = mlx_layout.read_config(src)
    mlx_layout.check_config(config, shapes, src)
    dims = mlx_layout.head_dims(config)

    def touched(name: str) -> bool:
        hf = view[name]
        return hf in adapter.trained or (
            hf.endswith(".weight") and hf.removesuffix(".weight") in adapter.lora
        )

    known = dtypes()
    specs = {}
    for name, info in header.items():
        kept = known[info["dtype"]]
        specs[name] = (dtype if dtype is not None and kept.is_floating_point else kept, stored[name])

    summary = {"tensors": 0, "merged": 0, "replaced": 0, "bytes": 0}

    def tensors():
        keep = lambda name, kept: not touched(name) and specs[name][0] == kept  # noqa: E731
        for name, t in iter_tensors(file, keep=keep):
            summary["tensors"] += 1
            if isinstance(t, Stored):
                yield name, t
                continue
            hf = view[name]
            heads = mlx_layout.rope_heads(hf, t.shape, dims) if touched(name) else None
            if heads:
                t = mlx_layout.to_halves(t, heads)
            t = lora.merged_tensor(hf, t, adapter)
            if heads:
                t = mlx_layout.to_interleaved(t, heads)
            summary["replaced"] += hf in adapter.trained
            summary["merged"] += hf.endswith(".weight") and hf.removesuffix(".weight") in adapter.lora
            yield name, t.to(specs[name][0]).contiguous()

    with atomic_dir(out) as tmp:
        for f in sorted(src.iterdir()):
            if f.is_file() and not f.name.startswith(".") and f.name != mlx_layout.CKPT:
                shutil.copyfile(f, tmp / f.name)  # README, a config.json when there is one
        summary["bytes"] = write_streaming(tmp / mlx_layout.CKPT, specs, tensors(), metadata or None)
        outputs.mark_dir(tmp, outputs.MERGED, base=base or str(src), adapter=str(where))
    log.info("%s: merged in the csm-1b-mlx layout (%s, names as stored)", out, mlx_layout.CKPT)
    return summary
