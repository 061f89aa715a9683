"""torch's random generators (CPU, every CUDA device, MPS) as tensors a checkpoint can hold (``rng.*``)."""

import torch


def rng_tensors() -> dict:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    if hasattr(torch, "mps") and torch.backends.mps.is_available():
        tensors["rng.mps"] = torch.mps.get_rng_state()
    return tensors


def restore_rng(tensors: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    if "rng.mps" in tensors and hasattr(torch, "mps") and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["rng.mps"])
