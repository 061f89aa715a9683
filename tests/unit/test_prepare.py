"""mkmanifest's engine: order, duplicates, speakers, durations, output names, workers, strictness."""

import os

import pytest
import soundfile as sf
from voxlora import audio
from voxlora.manifest import iter_manifest
from voxlora.prepare import PrepareConfig, prepare
from voxlora.rejects import Rejected, Tally
from voxlora.speakers import SpeakerMap

from tests.datagen import make_clips, write_jsonl, write_wav


def _run(manifest, **config):
    tally = Tally()
    out = list(prepare(iter_manifest(manifest), PrepareConfig(**config), SpeakerMap(), tally))
    return out, tally


def test_records_come_out_checked_and_measured(tmp_path):
    records = make_clips(tmp_path / "c", 2, seconds=0.5, sr=16000)
    records[0] |= {"speaker_name": "zoe", "emotion": "calm"}
    out, tally = _run(write_jsonl(tmp_path / "m.jsonl", records))
    assert out[0] == {
        "audio": records[0]["audio"], "text": records[0]["text"], "speaker": 0, "duration": 0.5,
        "sample_rate": 16000, "speaker_name": "zoe", "emotion": "calm",
    }  # fmt: skip
    assert list(out[1]) == ["audio", "text", "duration", "sample_rate"]
    assert (tally.kept, tally.rejected, round(tally.seconds, 3)) == (2, 0, 1.1)


def test_resampled_copies_and_untouched_originals(tmp_path):
    records = make_clips(tmp_path / "c", 2, seconds=0.5, sr=16000)
    before = [os.path.getmtime(r["audio"]) for r in records]
    out, _ = _run(write_jsonl(tmp_path / "m.jsonl", records), sample_rate=24000, out_dir=str(tmp_path / "o"))
    for r in out:
        info = sf.info(r["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
        assert r["sample_rate"] == 24000 and os.path.dirname(r["audio"]) == str(tmp_path / "o")
    assert [os.path.getmtime(r["audio"]) for r in records] == before


def test_same_names_from_two_folders_do_not_collide(tmp_path):
    a = write_wav(tmp_path / "x" / "take.wav", 0.2, 8000, seed=1)
    b = write_wav(tmp_path / "y" / "take.wav", 0.2, 8000, seed=2)
    manifest = write_jsonl(
        tmp_path / "m.jsonl", [{"audio": str(a), "text": "a"}, {"audio": str(b), "text": "b"}]
    )
    out, _ = _run(manifest, out_dir=str(tmp_path / "o"))
    names = [os.path.basename(r["audio"]) for r in out]
    assert names[0] == "take.wav" and names[1].startswith("take-") and len(set(names)) == 2


def test_writing_into_the_source_folder_never_overwrites_a_source(tmp_path):
    src = write_wav(tmp_path / "take.wav", 0.2, 16000)
    data = src.read_bytes()
    out, _ = _run(
        write_jsonl(tmp_path / "m.jsonl", [{"audio": str(src), "text": "a"}]),
        sample_rate=8000,
        out_dir=str(tmp_path),
    )
    assert out[0]["audio"] != str(src) and src.read_bytes() == data


def test_duplicates_keep_the_first(tmp_path):
    (rec,) = make_clips(tmp_path / "c", 1)
    manifest = write_jsonl(
        tmp_path / "m.jsonl", [rec, {**rec, "text": "again"}, {**rec, "audio": "c/./clip_000.wav"}]
    )
    out, tally = _run(manifest)
    assert [r["text"] for r in out] == [rec["text"]]
    assert tally.by_kind == {"duplicate": 2}
    assert tally.rejects[0]["reason"] == f"{manifest}:2: duplicate of {manifest}:1 (same audio file)"


def test_duration_limits(tmp_path):
    records = [
        {"audio": str(write_wav(tmp_path / f"{s}.wav", s, 8000)), "text": "x"} for s in (0.5, 1.0, 2.0)
    ]
    out, tally = _run(write_jsonl(tmp_path / "m.jsonl", records), min_duration=0.8, max_duration=1.5)
    assert [r["duration"] for r in out] == [1.0]
    reasons = [r["reason"].split(": ", 2)[-1] for r in tally.rejects]
    assert reasons == ["too short (0.50 s < --min-duration 0.8)", "too long (2.00 s > --max-duration 1.5)"]


def test_fixed_speaker_overrides(tmp_path):
    records = make_clips(tmp_path / "c", 2)
    records[0]["speaker"] = 4
    out, _ = _run(write_jsonl(tmp_path / "m.jsonl", records), speaker=9)
    assert [r["speaker"] for r in out] == [9, 9]


def test_workers_give_the_same_output_in_the_same_order(tmp_path):
    records = make_clips(tmp_path / "c", 9, seconds=0.3, sr=16000)
    records.insert(4, {"audio": str(tmp_path / "missing.wav"), "text": "gone"})
    manifest = write_jsonl(tmp_path / "m.jsonl", records)
    one, t1 = _run(manifest, sample_rate=8000, out_dir=str(tmp_path / "o1"))
    two, t2 = _run(manifest, sample_rate=8000, out_dir=str(tmp_path / "o2"), jobs=2)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "audio"} for r in rs]  # noqa: E731
    assert strip(one) == strip(two) and len(one) == 9
    assert [os.path.basename(r["audio"]) for r in one] == [os.path.basename(r["audio"]) for r in two]
    assert t1.rejects == t2.rejects and t1.by_kind == {"missing-file": 1}


def test_strict_raises_the_first_rejection(tmp_path):
    records = make_clips(tmp_path / "c", 2)
    manifest = write_jsonl(tmp_path / "m.jsonl", [records[0], {"audio": "nope.wav", "text": "x"}, records[1]])
    tally = Tally()
    it = prepare(iter_manifest(manifest), PrepareConfig(strict=True), SpeakerMap(), tally)
    assert next(it)["text"] == records[0]["text"]
    with pytest.raises(Rejected, match=r":2: .*nope.wav: file not found$"):
        next(it)
    assert tally.by_kind == {"missing-file": 1}  # counted before stopping, for --rejects


def test_a_clip_that_fails_to_decode_or_resample_is_rejected_and_the_rest_come_out(tmp_path, monkeypatch):
    records = make_clips(tmp_path / "c", 4, seconds=0.3, sr=16000)
    load, resample = audio.load, audio.resample

    def flaky_load(src):
        if src.endswith("clip_001.wav"):
            raise ValueError("decoder gave up")
        return load(src)

    def flaky_resample(x, sr, target):
        if len(x) == 8000:  # clip_002, the only 0.5 s one
            raise RuntimeError("ratio\nout of range")
        return resample(x, sr, target)

    monkeypatch.setattr(audio, "load", flaky_load)
    monkeypatch.setattr(audio, "resample", flaky_resample)
    manifest = write_jsonl(tmp_path / "m.jsonl", records)
    out, tally = _run(manifest, sample_rate=8000, out_dir=str(tmp_path / "o"))
    assert [r["text"] for r in out] == [records[0]["text"], records[3]["text"]]
    assert tally.by_kind == {"resample-failed": 1, "unreadable": 1}
    assert [r["reason"].split(": ", 2)[-1] for r in tally.rejects] == [
        "unreadable audio (ValueError: decoder gave up)",
        "cannot resample 16000 Hz to 8000 Hz (RuntimeError: ratio out of range)",
    ]
