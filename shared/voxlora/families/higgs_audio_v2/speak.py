"""synth for Higgs Audio v2 on torch: transformers' own ``generate``, the delay pattern undone here.

`HiggsSynth` is the family's `voxlora.families.base.SpeakModel`. The prompt is Higgs's chat
(`batch.conversation`): the system prompt, each context clip as a user turn (its text) answered by
the assistant's audio (the clip's codes, encoded now), then the text to speak and the generation
prompt ending in ``<|audio_out_bos|>``; voice cloning is a context clip, with or without an adapter.

``HiggsAudioV2ForConditionalGeneration.generate`` samples one frame of K codebooks per step with its
delay-pattern logits processor (codebook k starts k frames late and ends k frames late) and stops
when every codebook has given the stream's end. `generate` returns those raw (delayed) frames;
`trim` drops the leading all-bos frame, cuts at the first all-eos frame (``ended``), and undoes the
delay (the processor's ``revert_delay_pattern``), giving (T, K) codes the audio tokenizer decodes at
24 kHz (960 samples per frame). Adapters: `voxlora.backends.torch.adapter_switch.AdapterSwitch`,
direct or merged, as for every family.
"""

import numpy as np
import torch

from voxlora.backends.torch.adapter_switch import AdapterSwitch
from voxlora.families.higgs_audio_v2 import batch as hb
from voxlora.families.higgs_audio_v2 import codec
from voxlora.families.higgs_audio_v2.load import load_model, load_processor
from voxlora.modelfolder import torch_dtype


class HiggsSynth:
    name = "torch"

    def __init__(self, config):  # a voxlora.synth.config.SynthConfig
        from voxlora.modelfolder import model_dir

        folder = model_dir(config.model)
        device = config.resolved_device()
        self.processor = load_processor(folder, device=device)
        model = load_model(folder, dtype=torch_dtype(config.resolved_dtype()), device=device)
        self.bundle = model
        self.adapters = AdapterSwitch(model, merge=config.merge)
        self.sample_rate = codec.SAMPLE_RATE
        self.frame_size = int(self.processor.audio_tokenizer.config.hop_length)
        self.max_positions = int(model.config.max_position_embeddings)
        self.K = int(model.config.num_codebooks)

    def prompt(self, turns):
        """Context turns (with audio) then the last turn's text -> the model's generate inputs."""
        *context, last = turns
        messages = [{"role": "system", "content": hb.SYSTEM_PROMPT}]
        clips = []
        for turn in context:
            if turn.audio is None:
                continue  # a context turn without audio says nothing about the voice
            messages += hb.conversation(turn.text)[1:]
            clips.append(codec.encode(self.processor, turn.audio))
        messages.append({"role": "user", "content": last.text})
        text = hb.prompt_text(self.processor, messages, add_generation_prompt=True)
        if not clips:
            enc = self.processor.tokenizer([text], return_tensors="pt")
            return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        batch = hb.build_batch(self.processor, [(text, clips)], target_only=False)
        return batch.model_inputs()

    def prompt_length(self, inputs) -> int:
        return int(inputs["input_ids"].shape[1])

    @torch.inference_mode()
    def generate(self, inputs, max_frames: int, temperature: float, top_k: int, seed: int) -> torch.Tensor:
        """The generated frames (T', K) int64, still in the delay pattern (stream bos/eos included)."""
        model = self.bundle
        inputs = {k: v.to(model.device) for k, v in inputs.items()}
        before = inputs["audio_input_ids"].shape[1] if "audio_input_ids" in inputs else 0
        sampling = dict(temperature=temperature, top_k=top_k or None) if temperature > 0 else {}
        torch.manual_seed(seed)
        out = model.generate(
            **inputs, max_new_tokens=max_frames, do_sample=temperature > 0, top_p=None, **sampling
        )
        return out[0, before:].long().cpu()  # (T', K)

    def trim(self, codes: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(the (T, K) codes with the delay pattern undone, whether the model ended by itself)."""
        bos, eos = self.processor.audio_stream_bos_id, self.processor.audio_stream_eos_id
        all_bos = (codes == bos).all(-1).nonzero()
        start = int(all_bos[-1, 0]) + 1 if len(all_bos) else 0
        codes = codes[start:]
        all_eos = (codes == eos).all(-1).nonzero()
        ended = len(all_eos) > 0
        if ended:
            codes = codes[: int(all_eos[0, 0])]
        if len(codes) < self.K:
            return codes.new_zeros((0, self.K)), ended
        # (T, K); a stray bos/eos id sampled mid-stream is clipped into the codebook, as the processor does
        return self.processor.revert_delay_pattern(codes).clip(0, bos - 1), ended

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        if len(codes) == 0:
            return np.zeros(0, dtype=np.float32)
        return codec.decode(self.processor, codes.T)  # (T * 960,)
