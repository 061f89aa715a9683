"""synth's core: speech from text with a base model of any family, optionally through LoRA adapters.

    synthesizer.py     Synthesizer: the base loaded once, one `speak` per request
    config.py          SynthConfig: every setting and default (no torch import: `synth --help` is fast)
    requests.py        the command line or stdin lines (text or JSONL) as requests, bad lines as errors
    backend.py         load_model: the family's `SpeakModel` (voxlora.families.base) on its backend

The model side (prompt, sampling, trimming at the end marker, decoding, adapter switching) is the
family's: for CSM `voxlora.families.csm` (prompt.py, sample.py, speak.py, synth_torch.py,
synth_mlx.py) with `voxlora.backends.torch.adapter_switch` and `voxlora.backends.mlx.adapters`.

Nothing is imported here, so importing `voxlora.synth.config` stays light.
"""
