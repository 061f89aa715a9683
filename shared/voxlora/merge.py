"""Merge an adapter into a checkpoint on disk, tensor by tensor, into a standalone model folder.

As torchtune's ``get_merged_lora_ckpt``, no model is built: each base tensor is read, merged with
`lora.merged_tensor` (trained tensors replaced, ``W + scaling * B @ A`` for LoRA modules), cast, and
written before the next is read, so memory stays near the largest tensor plus the adapter. Shards
stay shards (``model.safetensors.index.json`` is rewritten), everything else in the folder (config,
tokenizer, processor, generation config) is copied, and the result loads as the base did
(``CsmForConditionalGeneration.from_pretrained`` for CSM); a csm-1b-mlx base is merged in its own
layout (`voxlora.families.csm.mlx_merge`). Which family the folder is (see
`voxlora.families`) decides what keeps its dtype (the codec) and which weight-like side files are
copied unread (VoxCPM's audiovae.pth, a pickle that voxlora never opens).

One CSM subtlety: the backbone's audio embedding is tied to the depth decoder's and stored once.
An adapter that trains one of the two breaks the tie (peft trains a copy), so the merged folder
stores both tables and sets ``tie_codebooks_embeddings: false`` in its config.json.
"""

import json
import logging
import shutil
from pathlib import Path

import torch

from voxlora import families, lora, outputs, targets, tensor_pickle
from voxlora.adapter import Adapter, require_fits, with_base_names
from voxlora.atomic import atomic_dir
from voxlora.safetensors_stream import Stored, dtypes, iter_tensors, read_header, write_streaming

INDEX = "model.safetensors.index.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")
_CONFIG_DTYPE = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
log = logging.getLogger("voxlora.merge")


def _out_dtype(name: str, dtype: torch.dtype, cast: torch.dtype | None, family) -> torch.dtype:
    """The codec keeps its dtype (Mimi is not meant for half precision); integer buffers too."""
    if cast is None or not dtype.is_floating_point or family.is_codec(name):
        return dtype
    return cast


def merge_folder(
    model,
    adapter: Adapter,
    out,
    dtype: torch.dtype | None = None,
    where: str = "adapter",
    family: str | None = None,
) -> dict:
    """Write base ``model`` (folder or hub id) with ``adapter`` merged to the folder ``out``, atomically.

    ``dtype`` casts the transformers' floating tensors (None keeps the base's). ``family`` overrides
    the model family config.json declares. Raises VoxloraError listing every adapter key that does
    not fit the base, before anything is written.
    Returns a summary: tensors written, LoRA modules merged, tensors replaced, bytes.
    """
    from voxlora.families.files import layout, tensor_files
    from voxlora.modelfolder import model_dir

    src = model_dir(model)
    kind = families.resolve(src, family)
    out = Path(out)
    inputs = [("the base model's folder", src)]
    if Path(where).is_dir():
        inputs.append(("the adapter folder", where))
    outputs.check_dir(out, outputs.MERGED, inputs)  # never an input; never a folder of other files
    if layout(src) == "csm-1b-mlx":  # ckpt.safetensors: its own names and q/k rows
        from voxlora.families.csm.mlx_merge import merge_ckpt

        return merge_ckpt(src, adapter, out, dtype, where=where, base=str(model))
    files = tensor_files(src, family)
    headers = {file: read_header(file)[0] for file in files}
    stored = {name: tuple(info["shape"]) for header in headers.values() for name, info in header.items()}
    adapter = with_base_names(adapter, targets.with_tied(stored), kind)
    require_fits(adapter, targets.with_tied(stored), where)
    touched = set(adapter.trained)
    untie = {
        alias: source
        for alias, source in targets.TIED.items()
        if alias not in stored and source in stored and touched & {alias, source}
    }
    by_source = {source: alias for alias, source in untie.items()}

    summary = {"tensors": 0, "merged": 0, "replaced": 0, "bytes": 0}
    with atomic_dir(out) as tmp:
        for f in sorted(src.iterdir()):
            if (
                f.is_file()
                and not f.name.startswith(".")
                and not f.name.endswith(_WEIGHT_SUFFIXES)
                and f.name != INDEX
            ):
                shutil.copyfile(f, tmp / f.name)
        sides = [name for name in kind.side_files if (src / name).is_file()]
        for name in sides:  # e.g. the codec's own weights file(s), copied unread
            shutil.copyfile(src / name, tmp / name)
        if kind.side_files and not sides:
            wanted = " or ".join(kind.side_files)
            log.warning("%s: no %s in the base; the merged folder needs it too", src, wanted)
        _rewrite_config(tmp / "config.json", dtype, untied=bool(untie))
        weight_map = {}
        for file in files:
            specs = {}
            for name, info in headers[file].items():
                specs[name] = (_out_dtype(name, dtypes()[info["dtype"]], dtype, kind), tuple(info["shape"]))
                if name in by_source:
                    specs[by_source[name]] = specs[name]
            name = "model.safetensors" if tensor_pickle.is_pickle(file) else file.name  # .bin: rewritten
            summary["bytes"] += write_streaming(
                tmp / name, specs, _merged(file, adapter, specs, by_source, summary), {"format": "pt"}
            )
            weight_map.update(dict.fromkeys(specs, name))
        if (src / INDEX).is_file():
            index = {
                "metadata": {"total_size": summary["bytes"]},
                "weight_map": dict(sorted(weight_map.items())),
            }
            (tmp / INDEX).write_text(json.dumps(index, indent=2) + "\n")
        outputs.mark_dir(tmp, outputs.MERGED, base=str(model), adapter=str(where))
    return summary


def _touched(name: str, adapter: Adapter) -> bool:
    """Whether `lora.merged_tensor` changes ``name`` (replaced, or a LoRA module's weight)."""
    module, _, leaf = name.rpartition(".")
    return name in adapter.trained or (leaf == "weight" and module in adapter.lora)


def _merged(file, adapter: Adapter, specs: dict, by_source: dict, summary: dict):
    """(name, merged tensor) for every tensor of ``file``, tied aliases right after their source.

    A tensor that would go out unchanged (untouched, same dtype) comes as a `Stored` slice of
    ``file``: never read, copied by the kernel.
    """

    def keep(name, dtype) -> bool:
        names = [name, by_source[name]] if name in by_source else [name]
        return all(not _touched(n, adapter) and specs[n][0] == dtype for n in names)

    for name, tensor in iter_tensors(file, keep=keep):
        names = [name, by_source[name]] if name in by_source else [name]
        for n in names:
            summary["tensors"] += 1
            if isinstance(tensor, Stored):
                yield n, tensor
                continue
            # a tensor read for one name is ours alone: its fp32 LoRA merge may happen in place
            t = lora.merged_tensor(n, tensor, adapter, inplace=len(names) == 1)
            summary["replaced"] += n in adapter.trained
            summary["merged"] += n.removesuffix(".weight") in adapter.lora and n.endswith(".weight")
            yield n, t.to(specs[n][0])


def _rewrite_config(path: Path, dtype: torch.dtype | None, untied: bool) -> None:
    if not path.is_file() or (dtype is None and not untied):
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if dtype is not None:
        config["dtype"] = _CONFIG_DTYPE[dtype]
        config.pop("torch_dtype", None)
    if untied:
        config["tie_codebooks_embeddings"] = False
        config["tie_word_embeddings"] = False
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
