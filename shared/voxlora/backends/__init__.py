"""Backends: the same CSM model, adapter and training loss on another array library.

torch (transformers + peft) is the reference backend and lives in `voxlora.models.csm`,
`voxlora.peft_bridge` and `voxlora.train.loss`. The MLX backend mirrors it function for function,
over the same inputs (model folders, `voxlora.adapter.Adapter`, `voxlora.train.batches.Batch`)::

    torch                                   MLX (voxlora.backends.mlx_*)
    models.csm.load_csm(model)              mlx_csm.load_mlx_csm(model)
    peft_bridge.new_adapter_for(...)        mlx_lora.new_adapter(bundle, settings, seed)  (same tensors)
    peft_bridge.apply_adapter(m, ad, t)     mlx_lora.apply_adapter(m, ad, trainable=t)
    peft_bridge.adapter_from_model(m, ad)   mlx_lora.adapter_from_model(m, like=ad)
    train.loss.csm_loss(model, batch)       mlx_loss.csm_loss(model, batch)
    one optimizer step of train.loop        mlx_train.Stepper(model, config).step(micro, lr)
    synth.sample.generate_codes(...)        mlx_generate.generate_codes(model, tokens, ...)
    synth_torch.TorchSynth                  synth_mlx.MlxSynth  (synth's one interface: see synth/backend.py)
    codes_cache.encode / synth.sample.decode   mlx_mimi.encode / mlx_mimi.decode

Adapters have one format whichever backend made them (peft's layout, `voxlora.adapter`), so an
adapter trained on one backend loads on the other. Nothing here imports MLX at package import.
"""

import importlib.util
import platform
import sys

BACKENDS = ("torch", "mlx")


def default_backend() -> str:
    """mlx on Apple silicon when mlx and mlx-audio are installed, else torch (Linux, CUDA, Intel Macs)."""
    apple = sys.platform == "darwin" and platform.machine() == "arm64"
    if apple and importlib.util.find_spec("mlx") and importlib.util.find_spec("mlx_audio"):
        return "mlx"
    return "torch"


def require_mlx() -> None:
    """Refuse `--backend mlx` in one line when mlx or mlx-audio is not installed."""
    from voxlora.errors import VoxloraError

    try:
        import mlx.core  # noqa: F401
        import mlx_audio  # noqa: F401
    except ImportError:
        raise VoxloraError("--backend mlx needs mlx and mlx-audio (pip install 'voxlora[mlx]')") from None
