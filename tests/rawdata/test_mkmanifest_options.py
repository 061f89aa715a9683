"""mkmanifest's raw-recording options through click: usage errors, M4A in a folder, cleaning, --model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from voxlora import audio, clean, decode
from voxlora.cli.mkmanifest import main

from tests.datagen import speechlike


def mk(*args, input=None):
    return CliRunner().invoke(main.cli, list(map(str, args)), input=input)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--segment"], "--segment needs --out-dir (the clips are written there)"),
        (["--val", 2], "--val-fraction and --val need --val-out FILE (the held-out manifest)"),
        (["--val-out", "v.jsonl"], "--val-out needs --val-fraction F or --val N"),
        (["--val", 2, "--val-fraction", 0.1, "--val-out", "v"], "--val-fraction and --val: give one"),
    ],
)
def test_usage_errors(args, message):
    result = mk("-", *args, input="")
    assert result.exit_code == 2 and message in result.stderr


def _folder(tmp_path, n=4):
    """n clips with sidecar transcripts: 0.5 s of silence, speech-like sound, 0.5 s of silence; one M4A."""
    folder = tmp_path / "c"
    folder.mkdir()
    for i in range(n):
        x = np.concatenate([np.zeros(12000), 0.1 * speechlike(1.0, seed=i), np.zeros(12000)]).astype(
            np.float32
        )
        path = folder / f"s{i}.{'m4a' if i == 0 else 'wav'}"
        decode.encode(path, x, 24000) if i == 0 else audio.write_wav(path, x, 24000)
        (folder / f"s{i}.txt").write_text(f"sentence number {i}.")
    return folder


def test_an_m4a_in_a_folder_is_read_and_written_clips_are_trimmed_and_normalised(tmp_path):
    folder = _folder(tmp_path)
    result = mk(folder, "--out-dir", tmp_path / "o", "--model", _tiny_tokenizer_model(tmp_path))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in out] == [f"sentence number {i}." for i in range(4)]
    for r in out:
        y, sr = audio.load(r["audio"])
        assert 1.1 <= r["duration"] <= 1.45  # 2 s in, 0.15 s of silence kept at each end (+ AAC priming)
        assert abs(clean.loudness(y, sr) - -23.0) < 0.5 and r["quality"]["snr_db"] > 30
    originals = audio.load(folder / "s1.wav")[0]
    assert len(originals) == 48000  # never touched
    assert "clips 4, 0.1 min, 1 speaker" in result.stderr  # the summary, as --model was given
    result = mk(folder, "--out-dir", tmp_path / "o2", "--no-trim", "--no-normalize")
    assert [json.loads(line)["duration"] for line in result.stdout.splitlines()][1:] == [2.0] * 3


def _tiny_tokenizer_model(tmp_path):
    from voxlora.demo_model import build_tokenizer

    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    build_tokenizer().save_pretrained(str(folder))
    return folder


def test_one_recording_cannot_be_split_by_recording(tmp_path):
    folder = _folder(tmp_path, n=1)
    result = mk(folder, "--out-dir", tmp_path / "o", "--val", 1, "--val-out", tmp_path / "v.jsonl")
    assert result.exit_code == 1
    assert "needs clips from at least two recordings" in result.stderr
