"""synth's one way to a model: the family's `voxlora.families.base.SpeakModel`, on its backend.

`load_model` finds the model folder's family (`voxlora.families.registry`) and loads the base
once on ``SynthConfig.backend``; everything after that (`voxlora.synth.Synthesizer`) calls the same
few members and never asks which family or backend it has::

    model = load_model(SynthConfig(model=..., backend="mlx"))   # the base, loaded once
    model.adapters.use("runs/a1")        # apply / switch / remove (None) an adapter, direct or merged
    inputs = model.prompt(turns)         # the family's prompt: context turns, then the text
    codes = generate_codes(model, inputs, max_frames, temperature, top_k, seed)   # (T, K)
    codes = generate_batch(model, [(inputs, max_frames, seed), ...], temperature, top_k)  # [(T, K), ...]
    codes, ended = model.trim(codes)     # cut at the family's end marker
    wave = model.decode(codes)           # (T * frame_size,) float32

Codes cross the interface as torch int64 tensors (T, K), so records and tests are the same for all.
"""

import torch

from voxlora.errors import VoxloraError
from voxlora.families.base import SpeakModel
from voxlora.synth.config import SynthConfig


def load_model(config: SynthConfig) -> SpeakModel:
    """The base model of ``config`` on its backend (``config.resolved_backend()``), loaded once."""
    from voxlora.families.registry import for_model
    from voxlora.modelfolder import model_dir

    return for_model(model_dir(config.model)).load_for_synthesis(config)


def generate_codes(
    model: SpeakModel, inputs, max_frames: int, temperature: float, top_k: int, seed: int
) -> torch.Tensor:
    """Audio codes (T, K) for one prompt, sampled from ``seed`` alone (the same seed, the same codes).

    ``temperature`` 0 is greedy; ``top_k`` 0 is no top-k. Ids the codec cannot decode are never sampled.
    """
    if temperature < 0 or top_k < 0:
        raise VoxloraError(f"temperature ({temperature}) and top-k ({top_k}) must not be negative")
    return model.generate(inputs, max_frames, temperature, top_k, seed)


def generate_batch(model: SpeakModel, prompts: list, temperature: float, top_k: int) -> list[torch.Tensor]:
    """Codes (T, K) for each ``(inputs, max_frames, seed)`` in ``prompts``, in order: the same codes
    as `generate_codes` gives each alone. Together where the model can (its ``generate_batch``:
    torch CSM), else one at a time."""
    if temperature < 0 or top_k < 0:
        raise VoxloraError(f"temperature ({temperature}) and top-k ({top_k}) must not be negative")
    together = getattr(model, "generate_batch", None)
    if together is not None and len(prompts) > 1:
        return together(prompts, temperature, top_k)
    return [model.generate(inputs, n, temperature, top_k, seed) for inputs, n, seed in prompts]
