"""Read and write safetensors files one tensor at a time, with plain file reads (no mmap).

`lora-merge` must hold about one tensor in memory, not a whole 6 GB shard. ``safe_open`` maps the
file, and every page it touches counts as resident until the file is closed; here each tensor is
read into its own buffer and written out before the next is read. A tensor that goes out exactly as
it came in (`Stored`: untouched by the adapter, same dtype) is not read at all: its bytes go from
file to file inside the kernel (``os.copy_file_range``, else ``os.sendfile``), as a file copy does.

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian header length N,
N bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the tensors' bytes; offsets count from the end of the header.
"""

import functools
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from voxlora import tensor_pickle
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
    """(tensors {name: {"dtype", "shape", "data_offsets"}} in file order, metadata, data start).

    A torch pickle (VoxCPM-0.5B's pytorch_model.bin) is read as tensors only (`voxlora.tensor_pickle`):
    its header has no offsets, and `iter_tensors` reads its tensors whole.
    """
    path = Path(path)
    if tensor_pickle.is_pickle(path):
        return tensor_pickle.header(path), {}, 0
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError) as e:
        raise VoxloraError(f"{path}: not a readable safetensors file ({e})") from None
    metadata = header.pop("__metadata__", None) or {}
    tensors = dict(sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]))
    return tensors, metadata, 8 + n


@dataclass(frozen=True)
class Stored:
    """A tensor left where it is: ``nbytes`` at byte ``offset`` of file ``path`` (copied unread)."""

    path: Path
    offset: int
    nbytes: int
    dtype: object  # torch dtype
    shape: tuple


def iter_tensors(path, keep=None):
    """Yield (name, tensor) in file order, each read into its own buffer.

    ``keep(name, dtype)``: when true, the tensor is not read and a `Stored` comes instead, for
    `write_streaming` to copy byte for byte.
    """
    import torch

    path = Path(path)
    if tensor_pickle.is_pickle(path):
        yield from tensor_pickle.read(path).items()
        return
    header, _, start = read_header(path)
    known = dtypes()
    with open(path, "rb") as f:
        for name, info in header.items():
            if info["dtype"] not in known:
                raise VoxloraError(f"{path}: {name} has dtype {info['dtype']}, which voxlora cannot read")
            begin, end = info["data_offsets"]
            if keep is not None and keep(name, known[info["dtype"]]):
                yield (
                    name,
                    Stored(path, start + begin, end - begin, known[info["dtype"]], tuple(info["shape"])),
                )
                continue
            buf = torch.empty(end - begin, dtype=torch.uint8)
            f.seek(start + begin)
            if f.readinto(buf.numpy()) != end - begin:
                raise VoxloraError(f"{path}: truncated at {name}")
            yield name, buf.view(known[info["dtype"]]).reshape(info["shape"])


def write_streaming(path, specs: dict, tensors, metadata: dict | None = None) -> int:
    """Write a safetensors file from ``specs`` ({name: (dtype, shape)}, in order) and ``tensors``,
    an iterable of (name, tensor or `Stored`) in the same order; returns the bytes of tensor data
    written.

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
    with open(path, "wb", buffering=0) as f, _Writer(f) as writer:
        writer.put(struct.pack("<Q", len(blob)) + blob)
        for (name, t), (want, (dtype, shape)) in zip(tensors, specs.items(), strict=True):
            if name != want or t.dtype != dtype or tuple(t.shape) != tuple(shape):
                raise ValueError(
                    f"{name}: expected {want} {dtype} {tuple(shape)}, got {t.dtype} {tuple(t.shape)}"
                )
            writer.put(
                t if isinstance(t, Stored) else t.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
            )
    return offset


class _Writer:
    """Writes to ``f`` on a thread of its own, so the next tensor is read and merged meanwhile.

    One item waits in the queue while another is written: at most two tensors beyond the one being
    made. A failed write is raised by the next `put` or on exit.
    """

    def __init__(self, f):
        import queue
        import threading

        self.f, self.error = f, None
        self.queue = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._run, name="safetensors-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the producer is told on its next put
            try:
                _copy_range(item, self.f) if isinstance(item, Stored) else _write_all(self.f, item)
            except BaseException as e:  # noqa: BLE001 - handed to the producer's thread
                self.error = e

    def put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


def _write_all(f, data) -> None:
    """Write every byte of ``data`` to the unbuffered file ``f`` (a raw write may be partial)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[f.write(view) :]


def _copy_range(stored: Stored, f) -> None:
    """Append ``stored``'s bytes to ``f`` without passing them through Python."""
    out = f.fileno()
    with open(stored.path, "rb", buffering=0) as src:
        offset, left = stored.offset, stored.nbytes
        while left:
            try:
                n = os.copy_file_range(src.fileno(), out, left, offset)
            except OSError:  # across filesystems on old kernels, or not supported
                n = os.sendfile(out, src.fileno(), offset, left)
            if n == 0:
                raise VoxloraError(f"{stored.path}: truncated")
            offset, left = offset + n, left - n


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
