"""Tensors from a torch pickle (``pytorch_model.bin``, ``audiovae.pth``), read with
``torch.load(weights_only=True)``: plain tensors only, so a pickle that would build any other object
(run code) is refused with a one-line error and never unpickled.

VoxCPM-0.5B ships its weights this way; everything else voxlora reads is safetensors. The file
tools see such a file through `header` (safetensors-style names, dtypes and shapes) and `tensors`.
"""

import functools
import pickle
from pathlib import Path

from voxlora.errors import VoxloraError

SUFFIXES = (".bin", ".pth", ".pt", ".ckpt")


def is_pickle(path) -> bool:
    return Path(path).suffix in SUFFIXES


def read(path) -> dict:
    """name -> tensor of a torch pickle (flat, or ``{"state_dict": {...}}`` as VoxCPM saves)."""
    import torch

    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise VoxloraError(f"{path}: refused: not a plain tensor file ({first[:160]})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise VoxloraError(f"{path}: refused: not a name -> tensor mapping")
    return data


@functools.lru_cache(maxsize=4)
def _names(path: Path, mtime: float) -> dict:
    import torch

    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    names |= {torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8"}
    names |= {torch.uint8: "U8", torch.bool: "BOOL"}  # safetensors' names (as safetensors_stream.dtypes)
    header = {}
    for name, t in read(path).items():
        if t.dtype not in names:
            raise VoxloraError(f"{path}: {name} has dtype {t.dtype}, which voxlora cannot read")
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape)}
    return header


def header(path) -> dict:
    """{name: {"dtype", "shape"}} as a safetensors header would say."""
    path = Path(path)
    return dict(_names(path.resolve(), path.stat().st_mtime))
