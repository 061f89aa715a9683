"""Read and write safetensors files one tensor at a time, with plain file reads (no mmap).

`lora-merge` must hold about one tensor in memory, not a whole 6 GB shard. ``safe_open`` maps the
file, and every page it touches counts as resident until the file is closed; here each tensor is
read into its own buffer and written out before the next is read.

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian header length N,
N bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the tensors' bytes; offsets count from the end of the header.
"""

import functools
import json
import struct
from pathlib import Path

from voxlora.errors import VoxloraError


@functools.cache
def dtypes() -> dict:
    """safetensors dtype names -> torch dtypes (torch imported only here: headers need no torch)."""
    import torch

    return {
        "F64": torch.float64,
        "F32": torch.float32,
        "F16": torch.float16,
        "BF16": torch.bfloat16,
        "I64": torch.int64,
        "I32": torch.int32,
        "I16": torch.int16,
        "I8": torch.int8,
        "U8": torch.uint8,
        "BOOL": torch.bool,
        "F8_E4M3": torch.float8_e4m3fn,
        "F8_E5M2": torch.float8_e5m2,
    }


def shapes(files) -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor in these safetensors files, from their headers alone."""
    return {name: tuple(info["shape"]) for file in files for name, info in read_header(file)[0].items()}


def read_header(path) -> tuple[dict, dict, int]:
    """(tensors {name: {"dtype", "shape", "data_offsets"}} in file order, metadata, data start)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError) as e:
        raise VoxloraError(f"{path}: not a readable safetensors file ({e})") from None
    metadata = header.pop("__metadata__", None) or {}
    tensors = dict(sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]))
    return tensors, metadata, 8 + n


def iter_tensors(path):
    """Yield (name, tensor) in file order, each read into its own buffer."""
    import torch

    path = Path(path)
    header, _, start = read_header(path)
    known = dtypes()
    with open(path, "rb") as f:
        for name, info in header.items():
            if info["dtype"] not in known:
                raise VoxloraError(f"{path}: {name} has dtype {info['dtype']}, which voxlora cannot read")
            begin, end = info["data_offsets"]
            buf = torch.empty(end - begin, dtype=torch.uint8)
            f.seek(start + begin)
            if f.readinto(buf.numpy()) != end - begin:
                raise VoxloraError(f"{path}: truncated at {name}")
            yield name, buf.view(known[info["dtype"]]).reshape(info["shape"])


def write_streaming(path, specs: dict, tensors, metadata: dict | None = None) -> int:
    """Write a safetensors file from ``specs`` ({name: (dtype, shape)}, in order) and ``tensors``,
    an iterable of (name, tensor) in the same order; returns the bytes of tensor data written.

    The header is written first from ``specs``, so no tensor has to be held back.
    """
    import torch

    names = {v: k for k, v in dtypes().items()}
    header, offset = {}, 0
    for name, (dtype, shape) in specs.items():
        nbytes = _numel(shape) * torch.empty((), dtype=dtype).element_size()
        header[name] = {
            "dtype": names[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    if metadata:
        header = {"__metadata__": metadata, **header}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned, as safetensors does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for (name, t), (want, (dtype, shape)) in zip(tensors, specs.items(), strict=True):
            if name != want or t.dtype != dtype or tuple(t.shape) != tuple(shape):
                raise ValueError(
                    f"{name}: expected {want} {dtype} {tuple(shape)}, got {t.dtype} {tuple(t.shape)}"
                )
            f.write(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy())
    return offset


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
