"""synth on torch: CSM through voxlora's generation loop and Mimi, adapters through peft (`AdapterSwitch`).

The torch half of `voxlora.synth.backend.SynthBackend`. Generation is `generate.CsmGenerator`
(transformers' CSM generate step for step, with a static KV cache and one ``torch.Generator`` per
clip seeded with its seed), alone or several prompts at once (``generate_batch``: the same codes);
decoding is `voxlora.families.csm.sample`'s.
"""

import numpy as np
import torch

from voxlora.backends.torch.adapter_switch import AdapterSwitch
from voxlora.families.csm.generate import CsmGenerator, Row, prompt_embeds
from voxlora.families.csm.sample import decode
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
        return self.generate_batch([(inputs, max_frames, seed)], temperature, top_k)[0]

    @torch.inference_mode()
    def generate_batch(self, prompts: list, temperature: float, top_k: int) -> list[torch.Tensor]:
        """Codes (T, K) for each ``(inputs, max_frames, seed)``, generated together."""
        model = self.bundle.model
        rows = [Row(prompt_embeds(model, inputs.to(model.device)), n, seed) for inputs, n, seed in prompts]
        return CsmGenerator(model, temperature, top_k).generate(rows)

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        return decode(self.bundle.codec, codes)
