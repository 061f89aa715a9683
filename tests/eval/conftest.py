"""Fixtures of the lora-eval tests: a held-out manifest of real speech (hibari) and two adapters."""

import json

import pytest

from tests import voices

HELD_OUT = ("The birch canoe slid on the smooth planks.", "Rice is often served in round bowls.")


@pytest.fixture(scope="session")
def held_out(tmp_path_factory):
    """Two hibari sentences at 24 kHz as a manifest (audio, text, speaker 0, duration)."""
    pytest.importorskip("hibari", reason="hibari-tts (the [demo] extra) speaks the held-out sentences")
    from voxlora import audio

    folder = tmp_path_factory.mktemp("held-out")
    lines = []
    for i, text in enumerate(HELD_OUT):
        x, rate = voices.hibari(text, seed=i)
        path = folder / f"real_{i}.wav"
        audio.write_wav(path, x, rate)
        lines.append(json.dumps({"audio": str(path), "text": text, "speaker": 0, "duration": len(x) / rate}))
    manifest = folder / "held_out.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


@pytest.fixture(scope="session")
def eval_adapters(tiny_csm, tmp_path_factory):
    """ "fresh": lora-init's (B = 0, no effect); "moved": every B random (changes the audio)."""
    import torch
    from voxlora.adapter import write_adapter
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import new_adapter_for

    root = tmp_path_factory.mktemp("eval-adapters")
    fresh = write_adapter(new_adapter_for(tiny_csm, LoraSettings(rank=2), seed=0), root / "fresh")
    moved = new_adapter_for(tiny_csm, LoraSettings(rank=2), seed=1)
    gen = torch.Generator().manual_seed(1)
    for _, B in moved.lora.values():
        B.copy_(torch.randn(B.shape, generator=gen) * 0.5)
    moved = write_adapter(moved, root / "moved")
    return {"fresh": str(fresh), "moved": str(moved)}
