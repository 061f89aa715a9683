"""The one interface synth speaks through, whichever array library runs the model (torch or MLX).

`load_csm` picks the backend once, from ``SynthConfig.backend``; everything after that
(`voxlora.synth.Synthesizer`) calls the same few members and never asks which backend it has::

    backend = load_csm(SynthConfig(model=..., backend="mlx"))   # the base, loaded once
    backend.adapters.use("runs/a1")       # apply / switch / remove (None) an adapter, direct or merged
    inputs = build_inputs(backend.processor, turns, backend.sample_rate)   # the shared prompt
    codes = generate_codes(backend, inputs, max_frames, temperature, top_k, seed)   # (T, K)
    wave = backend.decode(trim_at_eos(codes, backend.eos_id)[0])    # (T * frame_size,) float32

The implementations: `voxlora.backends.synth_torch.TorchSynth` (transformers + peft) and
`voxlora.backends.synth_mlx.MlxSynth` (mlx-audio's sesame model and Mimi). Codes cross the
interface as torch int64 tensors (T, K), so trimming, records and tests are the same for both.
"""

from typing import Protocol

import numpy as np
import torch

from voxlora.backends import require_mlx
from voxlora.errors import VoxloraError
from voxlora.synth.config import SynthConfig


class Adapters(Protocol):
    def use(self, path: str | None) -> None:
        """Make the adapter folder ``path`` active (read once, checked against the base), None = base."""


class SynthBackend(Protocol):
    """A CSM loaded for synthesis: its adapters, prompt processor, sampler and codec."""

    name: str  # "torch" | "mlx"
    bundle: object  # the loaded model (models.csm.CsmBundle | backends.mlx_csm.MlxCsm)
    processor: object  # transformers' CsmProcessor: prompts are built the same way for both
    adapters: Adapters
    sample_rate: int  # of the codec (24000 for Mimi)
    frame_size: int  # samples per codec frame (1920 for Mimi)
    max_positions: int  # the backbone's positions: prompt + generated frames must fit
    eos_id: int  # codebook_eos_token_id: a frame of it ends the clip

    def generate(self, inputs, max_frames: int, temperature: float, top_k: int, seed: int) -> torch.Tensor:
        """Codes (T, K) int64 for the processor's ``inputs``, at most ``max_frames`` (eos frame included)."""

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Waveform (T * frame_size,) float32 of codes (T, K); a `VoxloraError` if it cannot be one."""


def load_csm(config: SynthConfig) -> SynthBackend:
    """The base model of ``config`` on its backend (``config.resolved_backend()``), loaded once."""
    if config.resolved_backend() == "mlx":
        require_mlx()
        from voxlora.backends.synth_mlx import MlxSynth

        return MlxSynth(config)
    from voxlora.backends.synth_torch import TorchSynth

    return TorchSynth(config)


def generate_codes(
    backend: SynthBackend, inputs, max_frames: int, temperature: float, top_k: int, seed: int
) -> torch.Tensor:
    """Audio codes (T, K) for one prompt, sampled from ``seed`` alone (the same seed, the same codes).

    ``temperature`` 0 is greedy; ``top_k`` 0 is no top-k. Ids the codec cannot decode are never sampled.
    """
    if temperature < 0 or top_k < 0:
        raise VoxloraError(f"temperature ({temperature}) and top-k ({top_k}) must not be negative")
    return backend.generate(inputs, max_frames, temperature, top_k, seed)
