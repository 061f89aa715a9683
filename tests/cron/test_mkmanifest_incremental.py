"""mkmanifest --out-dir again over a grown corpus: only new or changed clips are processed."""

import json

import pytest
from click.testing import CliRunner
from voxlora import audio
from voxlora.cli.mkmanifest import main

from tests.datagen import make_clips, write_jsonl

RAW = ("--no-trim", "--no-normalize")  # the clips as decoded and resampled, not cleaned


def run(*args):
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result


def test_a_rerun_processes_only_the_new_clips(tmp_path, monkeypatch):
    records = make_clips(tmp_path / "src", 6, seconds=0.3)
    write_jsonl(tmp_path / "four.jsonl", records[:4])
    write_jsonl(tmp_path / "six.jsonl", records)
    out = tmp_path / "wav"
    run(tmp_path / "four.jsonl", "--out-dir", out, "--sample-rate", 8000, *RAW)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}

    loads = []
    real_load = audio.load
    sources = str(tmp_path / "src")  # only the sources' decoding counts (later stages may read outputs)
    monkeypatch.setattr(
        audio, "load", lambda src: (str(src).startswith(sources) and loads.append(str(src))) or real_load(src)
    )
    grown = run(tmp_path / "six.jsonl", "--out-dir", out, "--sample-rate", 8000, *RAW)
    assert sorted(loads) == sorted(r["audio"] for r in records[4:])  # only the two new clips decoded
    assert f"4 clips already in {out} (same source and settings), 2 written" in grown.stderr
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())

    fresh = run(tmp_path / "six.jsonl", "--out-dir", tmp_path / "fresh", "--sample-rate", 8000, *RAW)
    assert grown.stdout == fresh.stdout.replace(str(tmp_path / "fresh"), str(out))  # the same records

    loads.clear()
    changed = records[1]["audio"]
    audio.write_wav(changed, 0.5 * real_load(changed)[0], 24000)  # a source that changed is made again
    (out / json.loads(grown.stdout.splitlines()[2])["audio"].rsplit("/", 1)[1]).write_bytes(
        b"RIFF"
    )  # damaged
    again = run(tmp_path / "six.jsonl", "--out-dir", out, "--sample-rate", 8000, "--max-duration", 10, *RAW)
    assert sorted(loads) == sorted([changed, records[2]["audio"]])
    assert f"4 clips already in {out} (same source and settings), 2 written" in again.stderr

    loads.clear()
    other = run(
        tmp_path / "six.jsonl", "--out-dir", out, "--sample-rate", 16000, *RAW
    )  # other settings: all again
    assert len(loads) == 6 and "already in" not in other.stderr
    short = CliRunner().invoke(main.cli, [str(tmp_path / "six.jsonl"), "--out-dir", str(out), "--sample-rate",
                                          "16000", "--min-duration", "1", *RAW])  # fmt: skip
    assert "too short (0.30 s < --min-duration 1)" in short.output  # checked from the journal


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_rerun_with_cleaning_reuses_the_cleaned_clips(tmp_path, monkeypatch, jobs):  # trim, loudness on
    records = make_clips(tmp_path / "src", 6, seconds=0.3)
    write_jsonl(tmp_path / "four.jsonl", records[:4])
    write_jsonl(tmp_path / "six.jsonl", records)
    out = tmp_path / "wav"
    run(tmp_path / "four.jsonl", "--out-dir", out, "--sample-rate", 8000)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}

    loads = []
    real_load = audio.load
    sources = str(tmp_path / "src")
    monkeypatch.setattr(
        audio, "load", lambda src: (str(src).startswith(sources) and loads.append(str(src))) or real_load(src)
    )
    grown = run(tmp_path / "six.jsonl", "--out-dir", out, "--sample-rate", 8000, "-j", jobs)
    if jobs == 1:  # (workers decode in their own processes)
        assert sorted(loads) == sorted(r["audio"] for r in records[4:])  # only the two new clips decoded
    assert f"4 clips already in {out} (same source and settings), 2 written" in grown.stderr
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())  # not cleaned again

    fresh = run(tmp_path / "six.jsonl", "--out-dir", tmp_path / "fresh", "--sample-rate", 8000)
    assert grown.stdout == fresh.stdout.replace(str(tmp_path / "fresh"), str(out))  # same duration, quality
    assert all("quality" in json.loads(line) for line in grown.stdout.splitlines())

    loads.clear()
    louder = run(tmp_path / "six.jsonl", "--out-dir", out, "--sample-rate", 8000, "--loudness", -16)
    assert len(loads) == 6 and "already in" not in louder.stderr
    assert louder.stdout != grown.stdout  # other cleaning: all made again
