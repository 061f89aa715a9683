"""synth on MLX: mlx-audio's sesame model and Mimi behind `voxlora.synth.backend.SynthBackend`.

The prompt is the one the torch backend gets (`voxlora.families.csm.prompt.build_inputs`, transformers' processor);
it is turned into what `mlx_generate.generate_codes` reads (`prompt_arrays`), as transformers' CSM
does inside ``generate``: each context clip (``input_values`` cut at ``input_values_cutoffs``) is
encoded with the MLX Mimi and its codes go on the prompt's ``<|AUDIO|>`` positions, in order; each
``<|audio_eos|>`` position is an end-of-audio frame (every codebook ``codebook_eos_token_id``).

With ``--temperature 0`` the codes are the torch backend's codes (greedy on the same weights); with
sampling they come from MLX's generator keyed by the clip's seed, so they differ from torch's.
"""

import mlx.core as mx
import numpy as np
import torch

from voxlora.backends.mlx import csm as mlx_csm
from voxlora.backends.mlx import generate as mlx_generate
from voxlora.backends.mlx import mimi as mlx_mimi
from voxlora.backends.mlx.adapters import MlxAdapterSwitch
from voxlora.codec_option import codec_folder
from voxlora.errors import VoxloraError
from voxlora.families.csm.speak import CsmSpeaking

DEVICES = {"auto": None, "cpu": mx.cpu, "gpu": mx.gpu}  # auto: MLX's default (the GPU on Apple silicon)


class MlxSynth(CsmSpeaking):
    """A CSM on MLX (``--dtype``; ``--device`` auto, cpu or gpu) with its adapter switch."""

    name = "mlx"

    def __init__(self, config):  # a voxlora.synth.config.SynthConfig
        if config.device not in DEVICES:
            raise VoxloraError(f"--device {config.device}: the MLX backend runs on auto, cpu or gpu")
        if DEVICES[config.device] is not None:
            mx.set_default_device(DEVICES[config.device])
        dtype = "fp32" if config.dtype == "auto" else config.dtype
        codec = codec_folder(config.model, config.codec, "synth")
        self.bundle = mlx_csm.load_mlx_csm(config.model, dtype=dtype, codec_folder=codec)
        if self.bundle.codec is None:
            raise VoxloraError(f"{self.bundle.path}: no codec weights (codec_model.*) in the model folder")
        self.processor = load_processor(codec or self.bundle.path)
        self.adapters = MlxAdapterSwitch(self.bundle.model, merge=config.merge)
        self.sample_rate = self.bundle.sample_rate
        self.frame_size = mlx_mimi.frame_size(self.bundle.codec)
        self.max_positions = int(self.bundle.config["max_position_embeddings"])
        self.eos_id = int(self.bundle.config["codebook_eos_token_id"])

    def generate(self, inputs, max_frames: int, temperature: float, top_k: int, seed: int) -> torch.Tensor:
        tokens, codes, audio = prompt_arrays(inputs, self.bundle.config, self.bundle.codec)
        out = mlx_generate.generate_codes(
            self.bundle.model,
            tokens,
            max_frames,
            int(self.bundle.config["codec_config"]["codebook_size"]),
            temperature=temperature,
            top_k=top_k,
            seed=seed,
            codes=codes,
            audio=audio,
            eos_id=self.eos_id,
        )  # (T, K)
        return torch.from_numpy(out)

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        return mlx_mimi.decode(self.bundle.codec, codes.numpy())


def load_processor(folder):
    """transformers' CsmProcessor of the folder (tokenizer, chat template, feature extractor)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise VoxloraError(f"{folder}: cannot load the CSM processor: {str(e).splitlines()[0]}") from None


def prompt_arrays(inputs, config: dict, codec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The processor's inputs (one prompt) -> tokens (P,), codes (P, K) and audio (P,) bool.

    Audio positions are the ``<|AUDIO|>`` frames, filled with the context clips' Mimi codes, and the
    ``<|audio_eos|>`` frames; the rest are text tokens (codes 0, unused).
    """
    tokens = np.asarray(inputs["input_ids"])[0]  # (P,)
    frames = tokens == config["audio_token_id"]  # (P,)
    ends = tokens == config["audio_eos_token_id"]  # (P,)
    codes = np.zeros((len(tokens), int(config["num_codebooks"])), np.int32)  # (P, K)
    codes[ends] = int(config["codebook_eos_token_id"])
    if "input_values" in inputs:
        wave = np.asarray(inputs["input_values"], dtype=np.float32)[0, 0]  # (samples,) clips end to end
        cuts = [0, *(int(c) for c in np.asarray(inputs["input_values_cutoffs"])[0] if c >= 0)]
        clips = [mlx_mimi.encode(codec, wave[a:b]).T for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        clip_codes = np.concatenate(clips)  # (sum F_i, K)
        if len(clip_codes) != int(frames.sum()):
            raise VoxloraError(
                f"internal: the context clips encode to {len(clip_codes)} frames, "
                f"the prompt has {int(frames.sum())} audio positions"
            )
        codes[frames] = clip_codes
    return tokens, codes, frames | ends
