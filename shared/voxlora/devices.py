"""``--device``: checked before anything loads, with one message for every command.

    check_device("cuda:1", "torch")   # VoxloraError unless this machine has a second CUDA GPU

torch takes ``auto``, ``cpu``, ``cuda``, ``cuda:N`` and ``mps``; MLX takes ``auto``, ``cpu`` and
``gpu``. A device this machine lacks is refused as ``--device cuda: not available on this machine
(…)``, before the model is read, never as an error from deep inside the loader.
"""

import re

from voxlora.errors import UsageError, VoxloraError

_TORCH = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_MLX = ("auto", "cpu", "gpu")


def check_device(device: str, backend: str = "torch") -> str:
    """Return ``device`` when this machine has it on ``backend``; else one-line `VoxloraError`.

    A spelling no backend knows (``--device cdua``) is a usage error (exit 2).
    """
    if backend == "mlx":
        if device not in _MLX:
            raise UsageError(f"--device {device}: MLX takes {', '.join(_MLX)}")
        if device == "gpu":
            import mlx.core as mx

            if not _mlx_has_gpu(mx):
                raise VoxloraError(f"--device {device}: not available on this machine (MLX has no GPU here)")
        return device
    if not _TORCH.match(device):
        raise UsageError(f"--device {device}: use auto, cpu, cuda, cuda:N or mps")
    if device in ("auto", "cpu"):
        return device
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise VoxloraError(f"--device {device}: not available on this machine (torch sees no CUDA GPU)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise VoxloraError(
                f"--device {device}: not available on this machine "
                f"(torch sees {torch.cuda.device_count()} CUDA GPUs, cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    elif device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise VoxloraError(f"--device {device}: not available on this machine (torch sees no Apple GPU)")
    return device


def _mlx_has_gpu(mx) -> bool:
    try:
        return bool(mx.is_available(mx.gpu))
    except (AttributeError, TypeError):
        return bool(getattr(mx, "metal", None) and mx.metal.is_available())
