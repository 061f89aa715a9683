"""synth's core: speech from text with a CSM base model, optionally through LoRA adapters.

    synthesizer.py     Synthesizer: the base loaded once, one `speak` per request
    config.py          SynthConfig: every setting and default (no torch import: `synth --help` is fast)
    requests.py        the command line or stdin lines (text or JSONL) as requests, bad lines as errors
    prompt.py          CSM's conversation prompt, context clips as earlier turns
    sample.py          sampling codes the codec can decode, trimming at end-of-audio, decoding
    backend.py         the one interface both backends implement (backends/synth_torch.py, synth_mlx.py)
    adapter_switch.py  several adapters served from one loaded torch base, direct or merged

Nothing is imported here, so importing `voxlora.synth.config` stays light.
"""
