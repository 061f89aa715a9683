"""Shared by lora-train's tests: a small manifest of speech-like clips, and tensor hashes."""

import hashlib
from pathlib import Path

from tests.datagen import make_clips, write_jsonl


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
