"""Backends: the array libraries a model family runs on, one sub-package each.

    backends/torch/   transformers + peft: the optimizer step (`TorchStepper`), ``--device`` and
                      ``--dtype``, a codec's identity and encoding, RNG states, synth's adapter switch
    backends/mlx/     mlx + mlx-audio: the Sesame CSM model and Mimi on MLX, LoRA layers, the loss,
                      the optimizer step and generation

A family (`voxlora.families.<family>`) builds its `voxlora.families.base.TrainModel` and
`SpeakModel` per backend from these pieces; the trainer and synth never branch on the backend.
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
