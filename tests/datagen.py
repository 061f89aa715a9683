"""Deterministic test fixtures: speech-like audio, corpora in every layout, local HF datasets, bad input.

Everything is made from fixed seeds into a folder the test gives (``tmp_path``); nothing is
downloaded and nothing is written into the repository. Import as ``from tests.datagen import ...``.

    write_wav(path, seconds, sr, seed)        one speech-like clip (wav/flac/ogg/mp3 by extension)
    make_clips(folder, n)                     n clips + their records {"audio", "text"}
    write_jsonl(path, records)                a manifest
    make_corpus_folder(folder, layout, n)     an audio folder in a real corpus layout (CORPUS_LAYOUTS)
    make_hf_dataset(folder, layout, n)        a local HF dataset shaped like a Hub one (HF_LAYOUTS)
    make_bad_manifest(folder)                 the bad-input corpus: a JSONL manifest + what is wrong
    make_bad_folder(folder)                   bad transcripts in a sidecar folder
"""

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from voxlora.demo_corpus import SENTENCES as DEMO_SENTENCES

SENTENCES = DEMO_SENTENCES[3:11]  # eight Harvard sentences
CORPUS_LAYOUTS = ("libritts", "ljspeech", "common_voice", "audiofolder", "csm_mlx", "plain")
HF_LAYOUTS = ("common_voice", "librispeech", "voxpopuli", "ljspeech")


def sentence(i: int) -> str:
    """A distinct transcript for clip i (cycles through SENTENCES, numbered past the first lap)."""
    s = SENTENCES[i % len(SENTENCES)]
    return s if i < len(SENTENCES) else f"{s[:-1]}, number {i}."


def speechlike(seconds: float = 1.0, sr: int = 24000, seed: int = 0) -> np.ndarray:
    """Mono float32 (n,) that looks like speech to level meters: a gliding harmonic voice at 4 syllables/s.

    Peak about 0.5; the same (seconds, sr, seed) always gives the same samples.
    """
    rng = np.random.default_rng(seed)
    n = max(int(round(seconds * sr)), 0)
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, np.pi)), 0, None) ** 0.5
    x = voice * envelope + 0.01 * rng.standard_normal(n)
    peak = np.abs(x).max() if n else 1.0
    return (0.5 * x / (peak or 1.0)).astype(np.float32)


def write_wav(
    path, seconds: float = 1.0, sr: int = 24000, seed: int = 0, channels: int = 1, subtype: str | None = None
) -> Path:
    """Write a speech-like clip; the format follows the extension (.wav 16-bit PCM, .flac, .ogg, .mp3)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = speechlike(seconds, sr, seed)
    if channels > 1:
        x = np.stack([x * (1 - 0.1 * c) for c in range(channels)], axis=1)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[path.suffix.lower()]
    subtype = subtype or {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    sf.write(path, x, sr, format=fmt, subtype=subtype)
    return path


def audio_bytes(seconds: float = 1.0, sr: int = 16000, seed: int = 0, fmt: str = "WAV") -> bytes:
    """An encoded clip in memory (what HF datasets embed in their audio column)."""
    import io

    buf = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "MP3": "MPEG_LAYER_III"}[fmt]
    sf.write(buf, speechlike(seconds, sr, seed), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def make_clips(
    folder, n: int, seconds: float = 1.0, sr: int = 24000, seed: int = 0, ext: str = ".wav"
) -> list[dict]:
    """n clips ``clip_000.wav``... in ``folder``; returns their records ``{"audio": abs path, "text"}``."""
    folder = Path(folder)
    records = []
    for i in range(n):
        path = write_wav(folder / f"clip_{i:03d}{ext}", seconds + 0.1 * (i % 3), sr, seed + i)
        records.append({"audio": str(path.absolute()), "text": sentence(i)})
    return records


def write_jsonl(path, records) -> Path:
    """A JSONL manifest (records may be dicts, or raw strings written as they are)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# -- audio folders in the layouts real corpora use --------------------------------------------------
def make_corpus_folder(folder, layout: str, n: int = 4, sr: int = 16000, seed: int = 0) -> list[dict]:
    """An audio folder in ``layout`` (one of CORPUS_LAYOUTS); returns the expected records in order.

    Each expected record is ``{"audio": abs path, "text": transcript mkmanifest should pick,
    "speaker_name": str or None}`` (for csm_mlx: ``"speaker"``, the int it carries).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected = []
    if layout == "libritts":  # <spk>/<chapter>/<spk>_<chapter>_<utt>.wav + .normalized.txt + .original.txt
        for i in range(n):
            spk, chapter = ("19", "198") if i % 2 == 0 else ("1089", "134686")
            stem = f"{spk}_{chapter}_{i:06d}_{i:06d}"
            wav = write_wav(folder / spk / chapter / f"{stem}.wav", 0.8 + 0.1 * i, sr, seed + i)
            (wav.parent / f"{stem}.normalized.txt").write_text(sentence(i), encoding="utf-8")
            (wav.parent / f"{stem}.original.txt").write_text(sentence(i).upper(), encoding="utf-8")
            expected.append({"audio": str(wav.absolute()), "text": sentence(i), "speaker_name": spk})
        expected.sort(key=lambda r: r["audio"])  # mkmanifest walks folders sorted
    elif layout == "plain":  # X.wav + X.txt, flac and ogg too
        for i in range(n):
            wav = write_wav(folder / f"take{i:02d}{('.wav', '.flac', '.ogg')[i % 3]}", 0.8, sr, seed + i)
            wav.with_suffix(".txt").write_text(sentence(i) + "\n", encoding="utf-8")
            expected.append({"audio": str(wav.absolute()), "text": sentence(i), "speaker_name": None})
    elif layout == "ljspeech":  # metadata.csv "id|text|normalized" + wavs/
        lines = []
        for i in range(n):
            clip_id = f"LJ001-{i + 1:04d}"
            wav = write_wav(folder / "wavs" / f"{clip_id}.wav", 0.8, sr, seed + i)
            raw = sentence(i).replace("four", "4")
            lines.append(f"{clip_id}|{raw}|{sentence(i)}")
            expected.append({"audio": str(wav.absolute()), "text": sentence(i), "speaker_name": None})
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif layout == "common_voice":  # validated.tsv + clips/*.mp3
        header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent\tlocale\tsegment"
        lines = [header]
        for i in range(n):
            client = f"{(i % 2) * 7 + 1:x}" * 64
            name = f"common_voice_en_{1000 + i}.mp3"
            wav = write_wav(folder / "clips" / name, 1.0, 48000, seed + i)
            lines.append(f"{client}\t{name}\t{sentence(i)}\t2\t0\t\t\t\ten\t")
            expected.append({"audio": str(wav.absolute()), "text": sentence(i), "speaker_name": client})
        (folder / "validated.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif layout == "audiofolder":  # metadata.csv with file_name + transcription columns
        lines = ["file_name,transcription,speaker_id"]
        for i in range(n):
            wav = write_wav(folder / "data" / f"utt{i}.wav", 0.8, sr, seed + i)
            lines.append(f'data/utt{i}.wav,"{sentence(i)}",spk{i % 2}')
            expected.append(
                {"audio": str(wav.absolute()), "text": sentence(i), "speaker_name": f"spk{i % 2}"}
            )
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif layout == "csm_mlx":  # dataset.json [{"text", "audio_path", "speaker_id"}] + audio/
        items = []
        for i in range(n):
            wav = write_wav(folder / "audio" / f"sample_{i}.wav", 0.8, 24000, seed + i)
            items.append({"text": sentence(i), "audio_path": f"audio/sample_{i}.wav", "speaker_id": i % 2})
            expected.append({"audio": str(wav.absolute()), "text": sentence(i), "speaker": i % 2})
        (folder / "dataset.json").write_text(json.dumps(items, indent=2), encoding="utf-8")
    else:
        raise ValueError(f"unknown layout {layout!r}; known: {CORPUS_LAYOUTS}")
    return expected


# -- local Hugging Face datasets, shaped like the Hub versions --------------------------------------
def hf_table(layout: str, n: int = 6, seed: int = 0) -> tuple[dict, list[dict], int]:
    """(columns, expected [{"text", "speaker_name"}] per row, sample rate) for a layout in HF_LAYOUTS."""
    rows, expected = [], []
    if layout == "common_voice":  # mozilla-foundation/common_voice_*: mp3 at 48 kHz
        sr = 48000
        for i in range(n):
            client = f"{(i % 2) * 7 + 1:x}" * 64
            path = f"en_test_{i}/common_voice_en_{1000 + i}.mp3"
            rows.append(
                {"client_id": client, "path": path, "audio": {"bytes": audio_bytes(0.8, sr, seed + i, "MP3"), "path": path},
                 "sentence": sentence(i), "up_votes": 2, "down_votes": 0, "age": "", "gender": "", "accent": "",
                 "locale": "en", "segment": "", "variant": ""}
            )  # fmt: skip
            expected.append({"text": sentence(i), "speaker_name": client})
    elif layout == "librispeech":  # openslr/librispeech_asr: flac at 16 kHz, upper-case text, int speakers
        sr = 16000
        for i in range(n):
            spk, chapter = (103, 1240) if i % 2 == 0 else (1034, 121119)
            file = f"{spk}-{chapter}-{i:04d}.flac"
            rows.append(
                {"file": file, "audio": {"bytes": audio_bytes(0.8, sr, seed + i, "FLAC"), "path": file},
                 "text": sentence(i).upper().rstrip("."), "speaker_id": spk, "chapter_id": chapter, "id": file[:-5]}
            )  # fmt: skip
            expected.append({"text": sentence(i).upper().rstrip("."), "speaker_name": str(spk)})
    elif layout == "voxpopuli":  # facebook/voxpopuli: raw_text (sometimes empty) + normalized_text
        sr = 16000
        for i in range(n):
            raw = "" if i == 1 else sentence(i)
            rows.append(
                {"audio_id": f"20180612-0900-PLENARY-{i}", "language": 0,
                 "audio": {"bytes": audio_bytes(0.8, sr, seed + i), "path": f"train_part_0/{i}.wav"},
                 "raw_text": raw, "normalized_text": sentence(i).lower().rstrip("."), "gender": "female",
                 "speaker_id": f"{1000 + i % 2}", "is_gold_transcript": True, "accent": "None"}
            )  # fmt: skip
            expected.append(
                {"text": raw or sentence(i).lower().rstrip("."), "speaker_name": f"{1000 + i % 2}"}
            )
    elif layout == "ljspeech":  # keithito/lj_speech-style: id, audio, file, text, normalized_text
        sr = 22050
        for i in range(n):
            clip_id = f"LJ001-{i + 1:04d}"
            rows.append(
                {"id": clip_id, "audio": {"bytes": audio_bytes(0.8, sr, seed + i), "path": f"{clip_id}.wav"},
                 "file": f"wavs/{clip_id}.wav", "text": sentence(i).replace("four", "4"), "normalized_text": sentence(i)}
            )  # fmt: skip
            expected.append({"text": sentence(i), "speaker_name": None})
    else:
        raise ValueError(f"unknown layout {layout!r}; known: {HF_LAYOUTS}")
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return columns, expected, sr


def make_hf_dataset(folder, layout: str, n: int = 6, seed: int = 0, fmt: str = "disk") -> list[dict]:
    """A local dataset in ``folder`` shaped like the Hub's ``layout``; returns the expected rows.

    fmt "disk": ``DatasetDict.save_to_disk`` (librispeech gets the Hub's split names, "train.clean.100"
    and "validation.clean"; the others a "train" split); fmt "parquet": ``data/train-00000-of-00001.parquet``
    as in a clone of a Hub repository.
    """
    import datasets

    datasets.disable_progress_bars()
    columns, expected, sr = hf_table(layout, n, seed)
    # Plain struct column first, then typed: encoding straight into Audio() needs torchcodec.
    ds = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio(sampling_rate=sr))
    folder = Path(folder)
    if fmt == "parquet":
        (folder / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    elif layout == "librispeech":
        datasets.DatasetDict({"train.clean.100": ds, "validation.clean": ds.select(range(1))}).save_to_disk(
            str(folder)
        )
    else:
        datasets.DatasetDict({"train": ds}).save_to_disk(str(folder))
    return expected


# -- the bad-input corpus ---------------------------------------------------------------------------
def make_bad_manifest(folder) -> tuple[Path, list[dict], dict[int, str]]:
    """A JSONL manifest mixing good records with every kind of bad one mkmanifest must survive.

    Returns (manifest path, the good records in order, {line number: expected reject kind}).
    Good clips include a path with spaces and non-ASCII letters.
    """
    folder = Path(folder)
    good_a = write_wav(folder / "clips" / "good a.wav", 1.0, 16000, 1)
    good_b = write_wav(folder / "clips" / "Grüße çà 01.wav", 1.2, 22050, 2)
    good_c = write_wav(folder / "clips" / "stereo.flac", 0.9, 44100, 3, channels=2)
    bad = folder / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "noise.wav").write_bytes(np.random.default_rng(7).bytes(2000))  # not audio
    whole = bad / "whole.wav"
    write_wav(whole, 1.0, 16000, 4)
    data = whole.read_bytes()
    (bad / "truncated.wav").write_bytes(data[: len(data) // 2])
    whole.unlink()
    sf.write(bad / "empty.wav", np.zeros(0, np.float32), 16000, subtype="PCM_16")
    sf.write(bad / "silent.wav", np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    nan = speechlike(0.5, 16000, 5)
    nan[100:110] = np.nan
    sf.write(bad / "nan.wav", nan, 16000, subtype="FLOAT")
    (bad / "folder.wav").mkdir(exist_ok=True)
    lines = [
        {"audio": "clips/good a.wav", "text": sentence(0), "speaker": 3, "note": "kept as is"},  # 1
        '{"audio": "clips/x.wav", "text": ',  # 2 invalid JSON
        '["clips/good a.wav", "hi"]',  # 3 not an object
        {"text": "no audio key"},  # 4
        {"audio": "clips/good a.wav"},  # 5 missing text
        {"audio": "clips/good a.wav", "text": "   "},  # 6 empty text
        {"audio": "clips/good a.wav", "text": "hi", "speaker": "anna"},  # 7 wrong type
        {"audio": "clips/good a.wav", "text": sentence(1)},  # 8 duplicate of line 1
        {"audio": "bad/noise.wav", "text": "noise"},  # 9
        {"audio": "bad/truncated.wav", "text": "truncated"},  # 10
        {"audio": "bad/empty.wav", "text": "empty"},  # 11
        {"audio": "bad/silent.wav", "text": "silent"},  # 12
        {"audio": "bad/nan.wav", "text": "nan"},  # 13
        {"audio": "bad/missing.wav", "text": "missing"},  # 14
        {"audio": "bad/folder.wav", "text": "a folder"},  # 15
        {"audio": str(good_b.absolute()), "text": sentence(2)},  # 16 spaces + non-ASCII, absolute
        "",  # 17 blank: skipped, not an error
        {"audio": "clips/stereo.flac", "text": sentence(3), "dataset_id": 1},  # 18
    ]
    path = write_jsonl(folder / "train.jsonl", lines)
    with open(path, "ab") as f:
        f.write(b'{"audio": "clips/good a.wav", "text": "caf\xe9"}\n')  # 19 not UTF-8 (latin-1)
    expected = {
        2: "bad-json", 3: "bad-record", 4: "bad-record", 5: "no-text", 6: "no-text", 7: "bad-record",
        8: "duplicate", 9: "unreadable", 10: "truncated", 11: "empty", 12: "silent", 13: "nan",
        14: "missing-file", 15: "not-a-file", 19: "bad-encoding",
    }  # fmt: skip
    good = [
        {"audio": str(good_a.absolute()), "text": sentence(0), "speaker": 3, "note": "kept as is"},
        {"audio": str(good_b.absolute()), "text": sentence(2)},
        {"audio": str(good_c.absolute()), "text": sentence(3), "dataset_id": 1},
    ]
    return path, good, expected


def make_bad_folder(folder) -> tuple[list[str], dict[str, str]]:
    """A sidecar folder with good clips and bad transcripts; (good audio names, {audio name: kind})."""
    folder = Path(folder)
    for i, name in enumerate(["ok one", "ök two"]):
        write_wav(folder / f"{name}.wav", 0.8, 16000, i)
        (folder / f"{name}.txt").write_text(sentence(i), encoding="utf-8")
    write_wav(folder / "latin1.wav", 0.8, 16000, 3)
    (folder / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    write_wav(folder / "untranscribed.wav", 0.8, 16000, 4)
    write_wav(folder / "blank.wav", 0.8, 16000, 5)
    (folder / "blank.txt").write_text("  \n", encoding="utf-8")
    os.makedirs(folder / ".hidden", exist_ok=True)
    write_wav(folder / ".hidden" / "skipped.wav", 0.5, 16000, 6)  # hidden folders are not walked
    return ["ok one.wav", "ök two.wav"], {
        "latin1.wav": "bad-encoding",
        "untranscribed.wav": "no-text",
        "blank.wav": "no-text",
    }
