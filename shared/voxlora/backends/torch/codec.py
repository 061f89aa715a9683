"""A transformers audio codec (Mimi, ...) on torch: its identity for the codes cache, and encoding.

`codec_identity` hashes the codec's config and every weight, so two codecs share cached codes only
when they are the same codec; `encode` turns mono samples at the codec's rate into (K, F) codes.
"""

import hashlib
import json

import torch


def codec_identity(codec) -> str:
    """A hash of the codec's config and weights: two codecs share cached codes only if they match."""
    h = hashlib.sha256()
    config = codec.config.to_dict()
    for volatile in ("transformers_version", "_name_or_path", "torch_dtype", "dtype"):
        config.pop(volatile, None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in sorted(codec.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@torch.inference_mode()
def encode(codec, samples, device="cpu") -> torch.Tensor:
    """Mono float32 samples at the codec's rate (n,) -> codes (num_codebooks, frames) int16 on CPU."""
    x = torch.as_tensor(samples, dtype=torch.float32, device=device)[None, None]  # (1, 1, n)
    codes = codec.encode(x).audio_codes  # (1, K, F)
    return codes[0].to("cpu", torch.int16)
