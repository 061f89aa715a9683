"""synth on torch: transformers' CSM ``generate`` and Mimi, adapters through peft (`AdapterSwitch`).

The torch half of `voxlora.synth.backend.SynthBackend`; sampling and decoding are
`voxlora.families.csm.sample`'s. Each clip is seeded with ``torch.manual_seed(seed)``.
"""

import numpy as np
import torch

from voxlora.backends.torch.adapter_switch import AdapterSwitch
from voxlora.families.csm.sample import decode, generate_codes
from voxlora.families.csm.speak import CsmSpeaking
from voxlora.models.csm import load_csm


class TorchSynth(CsmSpeaking):
    """A CSM on torch (``--device``, ``--dtype``) with its adapter switch."""

    name = "torch"

    def __init__(self, config):  # a voxlora.synth.config.SynthConfig
        self.bundle = load_csm(
            config.model, dtype=config.resolved_dtype(), device=config.resolved_device(), codec=config.codec
        )
        self.processor = self.bundle.processor
        self.adapters = AdapterSwitch(self.bundle.model, merge=config.merge)
        self.sample_rate = self.bundle.sample_rate
        self.frame_size = int(self.bundle.codec.config.frame_size)
        self.max_positions = int(self.bundle.config.max_position_embeddings)
        self.eos_id = int(self.bundle.model.config.codebook_eos_token_id)

    def generate(self, inputs, max_frames: int, temperature: float, top_k: int, seed: int) -> torch.Tensor:
        model = self.bundle.model
        torch.manual_seed(seed)
        return generate_codes(model, inputs.to(model.device), max_frames, temperature, top_k)

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        return decode(self.bundle.codec, codes)
