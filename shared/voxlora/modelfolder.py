"""A model folder, any family: a local folder or a Hugging Face snapshot, its files, names and shapes.

A repo id is fetched with `huggingface_hub.snapshot_download`, which honours HF_HUB_OFFLINE and the
local cache. Everything that only needs names and shapes (target selection, fingerprints,
``--dry-run``, merging) uses `model_dir` and `weight_shapes`, which never load weights.
"""

import json
import os
from pathlib import Path

from voxlora.errors import VoxloraError

# Files a model folder carries besides its weights: copied as they are by lora-merge and checkpoints.
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.jinja",
    "chat_template.json",
)
MLX_CKPT = "ckpt.safetensors"  # the csm-1b-mlx layout's one weights file (`families.csm.mlx_layout`)


def is_mlx_ckpt(folder) -> bool:
    """Whether ``folder`` holds a CSM in the csm-1b-mlx layout: ``ckpt.safetensors``, no model.safetensors.

    Such a folder needs no config.json (the real ones ship none); the one place that says so.
    """
    folder = Path(folder)
    return (
        (folder / MLX_CKPT).is_file()
        and not (folder / "model.safetensors").is_file()
        and not (folder / "model.safetensors.index.json").is_file()
    )


def model_dir(model: str | os.PathLike) -> Path:
    """A local folder for ``model``: the folder itself, or a snapshot of the hub repo.

    Raises a one-line `VoxloraError` when a folder is missing its config or a repo can't be reached.
    """
    path = Path(model)
    if path.exists():
        if not path.is_dir():
            raise VoxloraError(f"{path}: not a model folder (a file)")
        if not (path / "config.json").is_file() and not is_mlx_ckpt(path):
            raise VoxloraError(f"{path}: not a model folder (no config.json)")
        return path
    if str(model).startswith((".", "/", "~")) or str(model).count("/") != 1:
        raise VoxloraError(f"{model}: no such folder, and not a Hugging Face repo id (owner/name)")
    return _snapshot(str(model))


def base_name(model: str | os.PathLike) -> str:
    """How an adapter records its base: a folder absolute (it works from anywhere), a hub id as given.

    >>> base_name("sesame/csm-1b")
    'sesame/csm-1b'
    """
    path = Path(model)
    return str(path.resolve()) if path.exists() else str(model)


def _snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # Fail fast without network: a short timeout instead of the default long one.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        return Path(
            snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.txt"])
        )
    except LocalEntryNotFoundError:
        raise VoxloraError(
            f"{repo_id}: not in the local Hugging Face cache and the hub cannot be reached "
            "(offline, or HF_HUB_OFFLINE=1); pass a local model folder instead"
        ) from None
    except HfHubHTTPError as e:
        raise VoxloraError(f"{repo_id}: Hugging Face Hub error: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise VoxloraError(f"{repo_id}: cannot reach the Hugging Face Hub ({type(e).__name__})") from None


def weight_files(model) -> list[Path]:
    """The safetensors files of a model folder (one file, or the shards its index names)."""
    folder = model_dir(model)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / n for n in names]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    if is_mlx_ckpt(folder):
        return [folder / MLX_CKPT]
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        raise VoxloraError(f"{folder}: only pickle weights (.bin/.pt) found; voxlora reads safetensors only")
    raise VoxloraError(f"{folder}: no model.safetensors in the model folder")


def weight_shapes(model) -> dict[str, tuple[int, ...]]:
    """Every weight's name and shape, read from the safetensors headers alone (no weights, no torch)."""
    from voxlora.safetensors_stream import shapes

    return shapes(weight_files(model))


def torch_dtype(name: str):
    import torch

    names = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
    }
    if name not in names:
        raise VoxloraError(f"unknown dtype {name!r} (use fp32, bf16 or fp16)")
    return names[name]
