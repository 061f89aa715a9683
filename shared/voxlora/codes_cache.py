"""Codec codes per clip, computed once and kept on disk, so training never runs the codec per step.

A cache entry is ``<cache>/<key[:2]>/<key>.safetensors`` holding one int16 tensor ``codes``
(num_codebooks, frames). The key is the sha256 of three things: the audio file's bytes, the codec's
identity (the family's `TrainModel.codec_identity`; for a transformers codec
`voxlora.backends.torch.codec.codec_identity`, a hash of its config and every weight) and `FORMAT` (how audio is
prepared). The same three are stored in the file's metadata and checked on every read, so an entry
is never trusted when anything it was made from differs; a damaged entry is encoded again. Entries
are written atomically, and the whole folder is safe to delete at any time.

    >>> cache = CodesCache("runs/voxlora-codes", model.codec_identity)     # doctest: +SKIP
    >>> codes = cache.get(sha, k, size) or cache.put(sha, encode(codec, x))   # doctest: +SKIP
"""

import hashlib
import json
import logging
from pathlib import Path

import torch

from voxlora.atomic import atomic_file
from voxlora.filehash import file_sha256  # noqa: F401 - re-exported: the families hash clips with it

log = logging.getLogger("voxlora")
FORMAT = "voxlora-codes-1:mono-float32:audresample"  # bump when the way audio becomes codes changes


class TensorCache:
    """One tensor per audio hash, for one encoder: ``<folder>/<key[:2]>/<key>.safetensors``.

    The key and the file's metadata are {audio sha256, encoder identity, ``format``}; `read` returns
    None for an absent, foreign or damaged entry, `write` stores atomically. Subclasses say what a
    valid tensor is (`CodesCache`, VoxCPM's `LatentCache`).
    """

    format = FORMAT
    tensor = "codes"  # the tensor's name inside the file

    def __init__(self, folder, codec_id: str):
        self.folder = Path(folder)
        self.codec_id = codec_id

    def _meta(self, audio_sha: str) -> dict:
        return {"audio_sha256": audio_sha, "codec": self.codec_id, "format": self.format}

    def path(self, audio_sha: str) -> Path:
        key = hashlib.sha256(json.dumps(self._meta(audio_sha), sort_keys=True).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.safetensors"

    def read(self, audio_sha: str) -> torch.Tensor | None:
        from safetensors import safe_open

        path = self.path(audio_sha)
        if not path.is_file():
            return None
        try:
            with safe_open(path, framework="pt") as f:
                if f.metadata() != self._meta(audio_sha):
                    return None
                return f.get_tensor(self.tensor)
        except Exception as e:  # truncated or foreign file: encode again
            log.debug("ignoring damaged cache entry %s: %s", path, e)
            return None

    def write(self, audio_sha: str, tensor: torch.Tensor) -> None:
        from safetensors.torch import save

        data = save({self.tensor: tensor.contiguous()}, metadata=self._meta(audio_sha))
        with atomic_file(self.path(audio_sha), "wb") as f:
            f.write(data)


class CodesCache(TensorCache):
    """Get and put codes by audio hash, for one codec."""

    def get(self, audio_sha: str, num_codebooks: int, codebook_size: int) -> torch.Tensor | None:
        """The cached codes (K, F) int16, or None when absent, made from something else, or damaged."""
        codes = self.read(audio_sha)
        ok = (
            codes is not None
            and codes.dtype == torch.int16
            and codes.ndim == 2
            and codes.shape[0] == num_codebooks
            and codes.shape[1] > 0
            and int(codes.min()) >= 0
            and int(codes.max()) < codebook_size
        )
        return codes if ok else None

    def put(self, audio_sha: str, codes: torch.Tensor) -> torch.Tensor:
        """Store ``codes`` (K, F) atomically and return them."""
        self.write(audio_sha, codes.to(torch.int16))
        return codes
