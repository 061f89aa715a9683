"""The MLX backend: Sesame CSM on MLX (mlx-audio's sesame model and Mimi), its LoRA layers, loss,
optimizer step and generation, all in one place. Importing this package does not import MLX; its
modules do (callers check `voxlora.backends.require_mlx` first).

    csm.py        load a sesame/csm-1b- or csm-1b-mlx-layout folder into mlx-audio's model (`load_mlx_csm`)
    mimi.py       the Mimi codec on MLX: encode / decode
    weights.py    weights into an MLX module, every name and shape checked
    lora.py       LoRA layers and adapters in peft's layout (`apply_adapter`, `adapter_from_model`)
    loss.py       CSM's training loss on a `Batch` (the same numbers as the torch loss)
    train.py      one optimizer step (`Stepper`)
    generate.py   sample codes frame by frame
    adapters.py   synth's adapter switch on MLX
"""
