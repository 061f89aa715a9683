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

import torch

from voxlora.codes_cache import TensorCache

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


class LatentCache(TensorCache):
    """Get and put one AudioVAE's latents by audio hash."""

    format = FORMAT
    tensor = "latents"

    def get(self, audio_sha: str, patch_size: int, feat_dim: int) -> torch.Tensor | None:
        """The cached latents (T, P, D), or None when absent, made from something else, or damaged."""
        latents = self.read(audio_sha)
        ok = (
            latents is not None
            and latents.dtype == torch.float32
            and latents.shape[1:] == (patch_size, feat_dim)
            and latents.shape[0] > 0
            and bool(torch.isfinite(latents).all())
        )
        return latents if ok else None

    def put(self, audio_sha: str, latents: torch.Tensor) -> torch.Tensor:
        self.write(audio_sha, latents)
        return latents
