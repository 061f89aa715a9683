"""CSM's side of `voxlora.families.base.SpeakModel` that both backends share: the prompt
(transformers' processor and CSM's chat template, `prompt.build_inputs`) and the end-of-audio frame
(`sample.trim_at_eos`). Mixed into `synth_torch.TorchSynth` and `synth_mlx.MlxSynth`, which set
``processor``, ``sample_rate`` and ``eos_id``.
"""

from voxlora.families.csm.prompt import build_inputs
from voxlora.families.csm.sample import trim_at_eos


class CsmSpeaking:
    processor: object
    sample_rate: int
    eos_id: int

    def prompt(self, turns):
        return build_inputs(self.processor, turns, self.sample_rate)

    def prompt_length(self, inputs) -> int:
        return int(inputs["input_ids"].shape[1])

    def trim(self, codes):
        return trim_at_eos(codes, self.eos_id)
