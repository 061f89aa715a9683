"""The bad-input corpus: every kind of bad file a voxlora command can be handed, made by code.

    make_audio_corpus(folder)                 a manifest of good and bad records and clips
    make_bad_adapters(folder, model)          adapter folders, one per way an adapter can be bad
    pickle_bomb(marker)                       pickle bytes whose unpickling creates ``marker``

Audio records build on `tests.datagen.make_bad_manifest` (lines 1-19) and add lines 20-23.
"""

import json
import pickle
import shutil
from pathlib import Path

import soundfile as sf

from tests.datagen import make_bad_manifest, speechlike, write_wav

LONG_SECONDS = 8.0  # the clip "longer than the maximum": mkmanifest --max-duration, lora-train budget


def make_audio_corpus(folder) -> tuple[Path, list[str], dict[int, str]]:
    """(manifest, the good clips' file names in order, {line: what mkmanifest and lora-train say}).

    Good: a path with spaces, one with non-ASCII letters, stereo, 8 kHz and 96 kHz audio.
    Bad: invalid JSON, JSON of the wrong type, missing and empty text, a wrong-typed field, a
    duplicate, noise, a corrupt WAV header, truncated, zero-length, silent, NaN, a missing file, a
    folder, a non-UTF-8 line, and a clip longer than the maximum (only under a maximum).
    """
    folder = Path(folder)
    manifest, _, _ = make_bad_manifest(folder)
    corrupt = folder / "bad" / "corrupt header.wav"
    write_wav(corrupt, 0.5, 16000, 8)
    data = bytearray(corrupt.read_bytes())
    data[0:4], data[8:16] = b"RIFX", b"WAVExxxx"  # the RIFF header and format chunk mangled
    corrupt.write_bytes(bytes(data))
    write_wav(folder / "clips" / "low 8k.wav", 0.6, 8000, 9)
    write_wav(folder / "clips" / "high 96k.flac", 0.6, 96000, 10)
    sf.write(folder / "clips" / "long.wav", speechlike(LONG_SECONDS, 16000, 11), 16000, subtype="PCM_16")
    with open(manifest, "a", encoding="utf-8") as f:
        for record in (
            {"audio": "bad/corrupt header.wav", "text": "corrupt"},  # 20
            {"audio": "clips/low 8k.wav", "text": "Eight kilohertz."},  # 21
            {"audio": "clips/high 96k.flac", "text": "Ninety-six kilohertz."},  # 22
            {"audio": "clips/long.wav", "text": "Long."},  # 23
        ):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    said = {
        2: "train.jsonl:2: invalid JSON (Expecting value, column 1)",
        3: "train.jsonl:3: not a JSON object (got a list)",
        4: 'train.jsonl:4: missing "audio"',
        5: 'train.jsonl:5: missing "text"',
        6: 'train.jsonl:6: empty "text"',
        7: 'train.jsonl:7: "speaker" must be an integer, not a string',
        8: "train.jsonl:8: duplicate of train.jsonl:1 (same audio file)",
        9: "train.jsonl:9: bad/noise.wav: unreadable audio (Format not recognised)",
        10: "train.jsonl:10: bad/truncated.wav: truncated (the header promises 32000 bytes of samples, "
        "the file holds 15978)",
        11: "train.jsonl:11: bad/empty.wav: empty (no samples)",
        12: "train.jsonl:12: bad/silent.wav: silent (every sample below -80 dBFS)",
        13: "train.jsonl:13: bad/nan.wav: NaN or infinite samples",
        14: "train.jsonl:14: bad/missing.wav: file not found",
        15: "train.jsonl:15: bad/folder.wav: is a folder, not an audio file",
        19: "train.jsonl:19: not UTF-8 (byte 0xe9 at column 43)",
        20: "train.jsonl:20: bad/corrupt header.wav: unreadable audio (Error in WAV file. No 'data' chunk marker)",
    }
    good = ["good a.wav", "Grüße çà 01.wav", "stereo.flac", "low 8k.wav", "high 96k.flac", "long.wav"]
    return manifest, good, said


class _Bomb:
    def __init__(self, marker):
        self.marker = Path(marker)

    def __reduce__(self):  # unpickling calls Path.touch(marker): proof that something unpickled it
        return (Path.touch, (self.marker,))


def pickle_bomb(marker) -> bytes:
    return pickle.dumps({"base_model.model.lm_head.lora_A.weight": _Bomb(marker)})


def make_bad_adapters(folder, model) -> dict[str, Path]:
    """{case: adapter folder} for a model folder; "good" is a usable adapter the others derive from.

    Cases: other-base (an adapter for a model of other shapes), truncated (adapter_model.safetensors
    cut short), unknown-field and missing-fields (adapter_config.json), pickle-as-safetensors and
    pickle-as-bin (pickles that would create ``folder/UNPICKLED`` if anything unpickled them).
    """
    import torch
    from safetensors.torch import load_file, save_file
    from voxlora.adapter import write_adapter
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import new_adapter_for

    folder = Path(folder)
    adapter = new_adapter_for(model, LoraSettings(rank=4, targets=("attn",)), seed=0)
    for _, B in adapter.lora.values():
        B.fill_(0.01)
    cases = {"good": write_adapter(adapter, folder / "good")}

    def copy(name):
        cases[name] = folder / name
        shutil.copytree(cases["good"], cases[name])
        return cases[name]

    other = copy("other-base")
    tensors = load_file(other / "adapter_model.safetensors")  # a base with a wider hidden size
    widened = {
        k: torch.zeros(t.shape[0], t.shape[1] * 2) if ".lora_A." in k else t for k, t in tensors.items()
    }
    save_file(widened, other / "adapter_model.safetensors")
    meta = json.loads((other / "voxlora.json").read_text())
    (other / "voxlora.json").write_text(json.dumps({**meta, "base_fingerprint": "sha256:00000000deadbeef"}))

    truncated = copy("truncated") / "adapter_model.safetensors"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])

    config = json.loads((cases["good"] / "adapter_config.json").read_text())
    (copy("unknown-field") / "adapter_config.json").write_text(json.dumps({**config, "shiny_new_option": 3}))
    missing = {k: v for k, v in config.items() if k not in ("peft_type", "r", "lora_alpha")}
    (copy("missing-fields") / "adapter_config.json").write_text(json.dumps(missing))

    marker = folder / "UNPICKLED"
    (copy("pickle-as-safetensors") / "adapter_model.safetensors").write_bytes(pickle_bomb(marker))
    as_bin = copy("pickle-as-bin")
    (as_bin / "adapter_model.safetensors").unlink()
    (as_bin / "adapter_model.bin").write_bytes(pickle_bomb(marker))
    return cases
