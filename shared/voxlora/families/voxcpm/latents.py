"""AudioVAE latents per clip, encoded once and cached on disk (VoxCPM's own trainer re-encodes every
clip at every step).

A clip becomes latents exactly as VoxCPM's packer makes them (`AudioFeatureProcessingPacker.
extract_audio_feats`): mono float32 at the AudioVAE's input rate, right-padded with zeros to a whole
number of patches (``hop_length * patch_size`` samples), encoded to the posterior mean, and cut
into patches: (T, P, D) with T patches of P latent frames of D channels. Prompt audio for speaking
is left-padded instead, as VoxCPM's ``build_prompt_cache`` does.

Entries live in ``<cache>/<key[:2]>/<key>.safetensors`` keyed, like voxlora's Mimi codes, by the
audio's sha256, the AudioVAE's identity (its config and every weight) and `FORMAT`; the same is
stored in the metadata and checked on every read, so a stale or damaged entry is encoded again.
"""

import hashlib
import json
import logging
from pathlib import Path

import torch

from voxlora.atomic import atomic_file

log = logging.getLogger("voxlora")
FORMAT = "voxlora-voxcpm-latents-1:mono-float32:right-pad-patch"


def vae_identity(vae, patch_size: int) -> str:
    """A hash of the AudioVAE's config, the patch size and every weight."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"sample_rate": int(vae.sample_rate), "hop": int(vae.hop_length), "patch": patch_size}
        ).encode()
    )
    for name, t in sorted(vae.state_dict().items()):
        t = t.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@torch.inference_mode()
def encode(vae, samples, patch_size: int, left_pad: bool = False) -> torch.Tensor:
    """Mono samples at ``vae.sample_rate`` (n,) -> latents (T, P, D) float32 on CPU."""
    wav = torch.as_tensor(samples, dtype=torch.float32).reshape(1, 1, -1)  # (1, 1, n)
    patch_len = int(vae.hop_length) * patch_size
    pad = -wav.shape[-1] % patch_len
    wav = torch.nn.functional.pad(wav, (pad, 0) if left_pad else (0, pad))
    device = next(vae.parameters()).device
    z = vae.encode(wav.to(device), vae.sample_rate)  # (1, D, F), F a multiple of patch_size
    d = z.shape[1]
    return z[0].transpose(0, 1).reshape(-1, patch_size, d).to("cpu", torch.float32)  # (T, P, D)


class LatentCache:
    """Get and put one AudioVAE's latents by audio hash."""

    def __init__(self, folder, vae_id: str):
        self.folder = Path(folder)
        self.vae_id = vae_id

    def _meta(self, audio_sha: str) -> dict:
        return {"audio_sha256": audio_sha, "codec": self.vae_id, "format": FORMAT}

    def path(self, audio_sha: str) -> Path:
        key = hashlib.sha256(json.dumps(self._meta(audio_sha), sort_keys=True).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, audio_sha: str, patch_size: int, feat_dim: int) -> torch.Tensor | None:
        """The cached latents (T, P, D), or None when absent, made from something else, or damaged."""
        from safetensors import safe_open

        path = self.path(audio_sha)
        if not path.is_file():
            return None
        try:
            with safe_open(path, framework="pt") as f:
                if f.metadata() != self._meta(audio_sha):
                    return None
                latents = f.get_tensor("latents")
        except Exception as e:  # truncated or foreign file: encode again
            log.debug("ignoring damaged cache entry %s: %s", path, e)
            return None
        ok = (
            latents.dtype == torch.float32
            and latents.shape[1:] == (patch_size, feat_dim)
            and latents.shape[0] > 0
            and bool(torch.isfinite(latents).all())
        )
        return latents if ok else None

    def put(self, audio_sha: str, latents: torch.Tensor) -> torch.Tensor:
        from safetensors.torch import save

        data = save({"latents": latents.contiguous()}, metadata=self._meta(audio_sha))
        with atomic_file(self.path(audio_sha), "wb") as f:
            f.write(data)
        return latents


def clip_latents(cache: LatentCache | None, vae, path, samples_fn, patch_size: int) -> torch.Tensor:
    """The latents of the audio file ``path``: from ``cache``, or encoded from ``samples_fn()`` (mono
    samples at the AudioVAE's rate) and stored."""
    from voxlora.train.codes_cache import file_sha256

    sha = file_sha256(path) if cache is not None else None
    if cache is not None:
        got = cache.get(sha, patch_size, int(vae.latent_dim))
        if got is not None:
            return got
    latents = encode(vae, samples_fn(), patch_size)
    return cache.put(sha, latents) if cache is not None else latents
