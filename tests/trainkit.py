"""Shared by lora-train's tests: a tiny CSM whose codec gives varied codes, a small manifest, hashes.

The tiny CSM's Mimi codebooks are all zero (Mimi keeps them in buffers that random init leaves at
zero), so every clip would encode to code 0 and a layout mix-up could pass unnoticed. `coded_csm`
copies the session's tiny model and gives its codebooks random centroids.
"""

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.datagen import make_clips, write_jsonl


def randomise_codebooks(folder, seed: int = 0) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "model.safetensors"
    tensors = load_file(path)
    gen = torch.Generator().manual_seed(seed)
    for name, t in tensors.items():
        if name.endswith("codebook.embed_sum"):
            tensors[name] = torch.randn(t.shape, generator=gen)
    save_file(tensors, path, metadata={"format": "pt"})


@pytest.fixture(scope="session")
def coded_csm(tiny_csm, tmp_path_factory):
    """The tiny CSM with a codec that maps different audio to different codes (read-only)."""
    folder = tmp_path_factory.mktemp("models") / "coded-tiny-csm"
    shutil.copytree(tiny_csm, folder)
    randomise_codebooks(folder)
    return folder


def make_manifest(folder, n: int = 8, seconds: float = 0.4, name: str = "train.jsonl", seed: int = 0) -> Path:
    """n short speech-like clips with a manifest beside them (relative paths, speakers 0 and 1)."""
    folder = Path(folder)
    records = make_clips(folder / "clips", n, seconds=seconds, seed=seed)
    for i, r in enumerate(records):
        r["audio"] = str(Path(r["audio"]).relative_to(folder))
        r["speaker"] = i % 2
    return write_jsonl(folder / name, records)


def tensor_hashes(model) -> dict[str, str]:
    """sha256 of every parameter and buffer, by name (tied tensors under each name)."""
    import torch

    out = {}
    for name, t in model.state_dict(keep_vars=True).items():
        data = t.detach().to("cpu").contiguous()
        out[name] = hashlib.sha256(data.view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
    return out


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (and two busy test workers do not fight)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
