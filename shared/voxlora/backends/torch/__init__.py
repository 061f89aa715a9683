"""The torch backend: transformers models, peft adapters, torch optimizers.

    train.py            the optimizer step (`TorchStepper`), ``--device`` / ``--dtype`` (autocast)
    codec.py            a transformers audio codec: its identity (codes cache) and encoding
    rng.py              torch's generator states, for checkpoints
    adapter_switch.py   synth: apply / switch / merge peft adapters on a loaded model

Nothing here knows a model family; the families (`voxlora.families.<family>`) use these pieces.
"""
