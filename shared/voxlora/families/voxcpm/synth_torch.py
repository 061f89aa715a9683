"""synth on VoxCPM: its own sampler (``generate_with_prompt_cache``), LoRA through `AdapterSwitch`.

The `voxlora.families.base.SpeakModel` of VoxCPM. Context clips are VoxCPM's continuation prompt:
their transcripts come before the text and their audio (read by voxlora, resampled to the
AudioVAE's input rate, left-padded to whole patches as its ``build_prompt_cache`` does) before the
new speech. ``--cfg`` and ``--timesteps`` are its sampler's ``cfg_value`` and
``inference_timesteps``; its sampler has no temperature or top-k. The diffusion noise is drawn from
torch's generator, seeded per clip. "Codes" here are the generated latent patches (T, P, D); the
wave is VoxCPM's own AudioVAE decode of them (with the prompt's last patches as context, as its
generate does), at the model's output rate (VoxCPM2: 48 kHz).

Adapters: the LoRA structure is put in once per adapter (peft, by exact module path) and switched
per request, the base between them with the layers disabled; ``--merge`` merges in memory.
"""

import numpy as np
import torch

from voxlora import audio as vaudio
from voxlora.backends.torch.adapter_switch import AdapterSwitch
from voxlora.families.voxcpm.latents import encode
from voxlora.families.voxcpm.runtime import quiet

TEXT_RATIO = 6.0  # VoxCPM's own cap: at most 6 patches per text token (+ 10)


class TorchSynth:
    name = "torch"

    def __init__(self, config):
        from voxlora.backends.torch.train import pick_device
        from voxlora.families.voxcpm.load import load

        device = pick_device(config.resolved_device())
        dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[config.resolved_dtype()]
        self.model = load(config.model, device=device, dtype=dtype)
        self.model.eval()
        self.bundle = self.model
        self.config = config
        self.adapters = AdapterSwitch(self.model, merge=config.merge)
        vae = self.model.audio_vae
        self.sample_rate = int(self.model.sample_rate)  # the decoder's output rate
        patch = int(self.model.patch_size)
        self.frame_size = patch * int(getattr(vae, "decode_chunk_size", vae.chunk_size))  # samples a patch
        self.max_positions = int(self.model.config.max_length)
        self._decoded = None

    def prompt(self, turns):
        *context, last = turns
        prompt = None
        heard = [t for t in context if t.audio is not None]
        if heard:
            vae = self.model.audio_vae
            wave = np.concatenate(
                [vaudio.resample(t.audio, self.sample_rate, int(vae.sample_rate)) for t in heard]
            )
            feats = encode(vae, wave, int(self.model.patch_size), left_pad=True)
            prompt = {
                "prompt_text": "".join(t.text for t in heard),
                "audio_feat": feats,
                "mode": "continuation",
            }
        return {"text": last.text, "prompt": prompt}

    def prompt_length(self, inputs) -> int:
        text = (inputs["prompt"] or {}).get("prompt_text", "") + inputs["text"]
        n_audio = 0 if inputs["prompt"] is None else int(inputs["prompt"]["audio_feat"].shape[0])
        return len(self.model.text_tokenizer(text)) + 1 + n_audio

    def generate(self, inputs, max_frames: int, temperature: float, top_k: int, seed: int):
        torch.manual_seed(seed)
        n_text = len(self.model.text_tokenizer(inputs["text"]))
        self._limit = min(int(n_text * TEXT_RATIO + 10), max_frames)
        with quiet():  # its progress bar and notes go to the debug log
            wave, _, feats = self.model.generate_with_prompt_cache(
                target_text=inputs["text"],
                prompt_cache=inputs["prompt"],
                min_len=2,
                max_len=max_frames,
                inference_timesteps=self.config.timesteps,
                cfg_value=self.config.cfg,
                retry_badcase=False,
            )
        codes = feats.detach().to("cpu", torch.float32)  # (T, P, D)
        self._decoded = (codes, wave.reshape(-1).to(torch.float32).numpy())
        return codes

    def trim(self, codes):
        return codes, len(codes) < self._limit  # its stop head ended the clip before the cap

    def decode(self, codes) -> np.ndarray:
        if self._decoded is not None and codes is self._decoded[0]:
            return self._decoded[1]
        latents = codes.permute(2, 0, 1).reshape(1, codes.shape[2], -1)  # (1, D, T*P)
        with torch.inference_mode():
            wave = self.model.audio_vae.decode(latents.to(next(self.model.audio_vae.parameters()).device))
        return wave.reshape(-1).to("cpu", torch.float32).numpy()
