"""mkmanifest through click: stdin, folders, every bad input, exit codes and exact messages, layouts."""

import json

import pytest
import soundfile as sf
from click.testing import CliRunner
from voxlora.cli.mkmanifest import main

from tests.datagen import make_bad_manifest, make_clips, make_corpus_folder


def mk(*args, input=None):
    return CliRunner().invoke(main.cli, list(map(str, args)), input=input)


def jsonl(text):
    return [json.loads(line) for line in text.splitlines()]


def test_help_shows_a_piped_example():
    result = mk("--help")
    assert result.exit_code == 0
    assert "hf-fetch ./my-dataset --out-dir clips | mkmanifest - --sample-rate 24000" in result.stdout


def test_stdin_in_jsonl_out_logs_on_stderr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    records = make_clips("clips", 2, seconds=0.5, sr=16000)
    stdin = "".join(json.dumps({**r, "audio": f"clips/clip_00{i}.wav"}) + "\n" for i, r in enumerate(records))
    result = mk("-", "--sample-rate", 24000, "--out-dir", "wav24", input=stdin)
    assert result.exit_code == 0, result.output
    out = jsonl(result.stdout)
    assert [r["audio"] for r in out] == [str(tmp_path / "wav24" / f"clip_00{i}.wav") for i in range(2)]
    assert [r["sample_rate"] for r in out] == [24000, 24000]
    assert all(sf.info(r["audio"]).samplerate == 24000 for r in out)
    assert result.stderr.strip().splitlines() == ["kept 2 clips (1.1 s); rejected 0"]


def test_sample_rate_needs_out_dir():
    result = mk("-", "--sample-rate", 24000, input="")
    assert result.exit_code == 2
    assert "Error: --sample-rate needs --out-dir (the resampled WAVs are written there)" in result.stderr


def test_min_above_max_is_a_usage_error():
    result = mk("-", "--min-duration", 3, "--max-duration", 2, input="")
    assert result.exit_code == 2 and "--min-duration is larger than --max-duration" in result.stderr


def test_an_out_dir_that_cannot_be_made_is_one_line_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notadir").write_text("a file")
    make_clips("clips", 1)
    result = mk("clips", "--sample-rate", 24000, "--out-dir", "notadir/x")
    assert (result.exit_code, result.stdout) == (1, "")
    assert (
        result.stderr.splitlines()[-1] == "Error: notadir/x: cannot write the clips there (Not a directory)"
    )
    assert "internal error" not in result.stderr


def test_a_file_system_error_names_the_file_not_an_internal_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notadir").write_text("a file")
    make_clips("clips", 1)
    result = mk("clips", "--rejects", "notadir/r.jsonl")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: notadir: File exists"


def test_a_missing_input_is_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = mk("nope")
    assert (result.exit_code, result.stderr) == (1, "Error: nope: no such file or folder\n")


def test_every_bad_input_is_reported_and_every_good_record_comes_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest, good, expected = make_bad_manifest(".")
    result = mk("train.jsonl", "--rejects", "rejects.jsonl")
    assert result.exit_code == 0, result.output
    out = jsonl(result.stdout)
    assert [{k: r[k] for k in g} for r, g in zip(out, good, strict=True)] == good  # unknown keys pass through
    assert [r["sample_rate"] for r in out] == [16000, 22050, 44100]  # no --out-dir: the files as they are
    log = result.stderr.splitlines()
    assert log[:-1] == [
        "train.jsonl:2: invalid JSON (Expecting value, column 1)",
        "train.jsonl:3: not a JSON object (got a list)",
        'train.jsonl:4: missing "audio"',
        'train.jsonl:5: missing "text"',
        'train.jsonl:6: empty "text"',
        'train.jsonl:7: "speaker" must be an integer, not a string',
        "train.jsonl:8: duplicate of train.jsonl:1 (same audio file)",
        "train.jsonl:9: bad/noise.wav: unreadable audio (Format not recognised)",
        "train.jsonl:10: bad/truncated.wav: truncated (the header promises 32000 bytes of samples, the file holds 15978)",
        "train.jsonl:11: bad/empty.wav: empty (no samples)",
        "train.jsonl:12: bad/silent.wav: silent (every sample below -80 dBFS)",
        "train.jsonl:13: bad/nan.wav: NaN or infinite samples",
        "train.jsonl:14: bad/missing.wav: file not found",
        "train.jsonl:15: bad/folder.wav: is a folder, not an audio file",
        "train.jsonl:19: not UTF-8 (byte 0xe9 at column 43)",
    ]
    assert log[-1] == (
        "kept 3 clips (3.1 s); rejected 15: 3 bad-record, 2 no-text, 1 bad-encoding, 1 bad-json, 1 duplicate, "
        "1 empty, 1 missing-file, 1 nan, 1 not-a-file, 1 silent, 1 truncated, 1 unreadable"
    )
    rejects = jsonl((tmp_path / "rejects.jsonl").read_text())
    assert [int(r["reason"].split(":")[1]) for r in rejects] == sorted(expected)
    silent = rejects[10]
    assert silent == {"audio": str(tmp_path / "bad" / "silent.wav"), "text": "silent", "reason": log[10]}
    assert rejects[0] == {"raw": '{"audio": "clips/x.wav", "text":', "reason": log[0]}


def test_a_fixed_rejects_file_can_be_fed_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_bad_manifest(".")
    mk("train.jsonl", "--rejects", "rejects.jsonl")
    fixed = [r for r in jsonl((tmp_path / "rejects.jsonl").read_text()) if "empty" in r["reason"]]
    fixed[0]["text"] = "fixed"  # 'empty "text"' at line 6, a good clip
    (tmp_path / "fixed.jsonl").write_text(json.dumps(fixed[0]) + "\n")
    result = mk("fixed.jsonl")
    assert result.exit_code == 0 and jsonl(result.stdout)[0]["text"] == "fixed"
    assert "reason" not in jsonl(result.stdout)[0]


def test_strict_stops_at_the_first_bad_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_bad_manifest(".")
    result = mk("train.jsonl", "--strict", "--rejects", "r.jsonl")
    assert result.exit_code == 1
    assert result.stderr == "Error: train.jsonl:2: invalid JSON (Expecting value, column 1)\n"
    assert len(jsonl(result.stdout)) == 1  # line 1 was good and already out
    assert len(jsonl((tmp_path / "r.jsonl").read_text())) == 1


def test_nothing_usable_is_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = mk("-", input='{"audio": "gone.wav", "text": "hi"}\n')
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "<stdin>:1: gone.wav: file not found",
        "kept 0 clips (0.0 s); rejected 1: 1 missing-file",
        "Error: -: no usable clip (kept 0 clips (0.0 s); rejected 1: 1 missing-file)",
    ]


def test_empty_input_is_exit_1():  # no usable input at all (README: exit 1), one line
    result = mk("-", input="\n\n")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.endswith("Error: <stdin>: no clips in the input (it is empty)\n")


@pytest.mark.parametrize(
    "layout", ["libritts", "common_voice", "ljspeech", "audiofolder", "csm_mlx", "plain"]
)
def test_folders_in_every_layout(tmp_path, layout):
    expected = make_corpus_folder(tmp_path / "c", layout, n=4)
    result = mk(tmp_path / "c", "--sample-rate", 24000, "--out-dir", tmp_path / "o")
    assert result.exit_code == 0, result.output
    out = jsonl(result.stdout)
    assert [r["text"] for r in out] == [e["text"] for e in expected]
    assert all(sf.info(r["audio"]).samplerate == 24000 and r["sample_rate"] == 24000 for r in out)
    speakers = [r.get("speaker") for r in out]
    # first seen, first numbered; folders are walked sorted, so LibriTTS's 1089/ comes before 19/
    assert speakers == {"libritts": [0, 0, 1, 1], "ljspeech": [None] * 4, "plain": [None] * 4}.get(
        layout, [0, 1, 0, 1]
    )


def test_speakers_file_and_fixed_speaker(tmp_path):
    make_corpus_folder(tmp_path / "c", "libritts", n=4)
    (tmp_path / "s.json").write_text('{"19": 5}')
    result = mk(tmp_path / "c", "--speakers", tmp_path / "s.json")
    assert sorted({(r["speaker_name"], r["speaker"]) for r in jsonl(result.stdout)}) == [
        ("1089", 6),
        ("19", 5),
    ]
    assert json.loads((tmp_path / "s.json").read_text()) == {"19": 5, "1089": 6}
    assert "2 speakers: 19=5, 1089=6" in result.stderr
    result = mk(tmp_path / "c", "--speaker", 2)
    assert {r["speaker"] for r in jsonl(result.stdout)} == {2}


def test_duration_filters(tmp_path):
    make_corpus_folder(tmp_path / "c", "libritts", n=4)  # 0.8, 0.9, 1.0, 1.1 s
    result = mk(tmp_path / "c", "--min-duration", 0.85, "--max-duration", 1.05)
    assert sorted(r["duration"] for r in jsonl(result.stdout)) == [0.9, 1.0]
    assert "rejected 2: 1 too-long, 1 too-short" in result.stderr


def test_output_layouts(tmp_path):
    make_corpus_folder(tmp_path / "c", "csm_mlx", n=2)
    result = mk(tmp_path / "c", "--to", "csm-mlx")
    assert json.loads(result.stdout) == [
        {"text": r["text"], "audio_path": str(tmp_path / "c" / "audio" / f"sample_{i}.wav"), "speaker_id": i}
        for i, r in enumerate(jsonl(mk(tmp_path / "c").stdout))
    ]
    result = mk(tmp_path / "c", "--to", "voxcpm")
    assert [sorted(r) for r in jsonl(result.stdout)] == [["audio", "duration", "text"]] * 2


def test_jobs_keep_the_input_order(tmp_path):
    make_corpus_folder(tmp_path / "c", "plain", n=6)
    one = mk(tmp_path / "c", "--out-dir", tmp_path / "o1")
    two = mk(tmp_path / "c", "--out-dir", tmp_path / "o2", "--jobs", 2)
    assert one.stdout.replace("/o1/", "/o2/") == two.stdout


def test_debug_shows_a_traceback_for_user_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = mk("nope", "--debug")
    assert result.exit_code == 1 and type(result.exception).__name__ == "VoxloraError"
