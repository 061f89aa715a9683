"""Manifest records: checking, lazy reading with file:line errors, path resolution, writing, other layouts."""

import io
import json
import os
import sys

import pytest
from voxlora.errors import VoxloraError
from voxlora.manifest import (
    check_record,
    iter_manifest,
    read_manifest,
    resolve_audio,
    to_csm_mlx,
    to_voxcpm,
    write_manifest,
    write_record,
)
from voxlora.rejects import Rejected

from tests.datagen import write_jsonl


def test_a_full_record_passes_and_unknown_keys_stay():
    rec = {
        "audio": "a.wav",
        "text": "Hi.",
        "speaker": 2,
        "duration": 1.5,
        "sample_rate": 24000,
        "dataset_id": 1,
    }
    rec["emotion"] = "happy"
    assert check_record(rec) == rec


@pytest.mark.parametrize(
    "obj, kind, message",
    [
        ([1, 2], "bad-record", "m.jsonl:4: not a JSON object (got a list)"),
        ("a.wav", "bad-record", "m.jsonl:4: not a JSON object (got a string)"),
        ({"text": "hi"}, "bad-record", 'm.jsonl:4: missing "audio"'),
        ({"audio": 3, "text": "hi"}, "bad-record", 'm.jsonl:4: "audio" must be a non-empty string (a path), not a number'),
        ({"audio": "a.wav"}, "no-text", 'm.jsonl:4: missing "text"'),
        ({"audio": "a.wav", "text": " \n"}, "no-text", 'm.jsonl:4: empty "text"'),
        ({"audio": "a.wav", "text": ["hi"]}, "bad-record", 'm.jsonl:4: "text" must be a string, not a list'),
        ({"audio": "a.wav", "text": "hi", "speaker": "anna"}, "bad-record", 'm.jsonl:4: "speaker" must be an integer, not a string'),
        ({"audio": "a.wav", "text": "hi", "speaker": True}, "bad-record", 'm.jsonl:4: "speaker" must be an integer, not true/false'),
        ({"audio": "a.wav", "text": "hi", "speaker": -1}, "bad-record", 'm.jsonl:4: "speaker" must be >= 0, not -1'),
        ({"audio": "a.wav", "text": "hi", "sample_rate": 0}, "bad-record", 'm.jsonl:4: "sample_rate" must be > 0, not 0'),
        ({"audio": "a.wav", "text": "hi", "duration": "2s"}, "bad-record", "m.jsonl:4: \"duration\" must be a number of seconds >= 0, not '2s'"),
        ({"audio": "a.wav", "text": "hi", "duration": float("nan")}, "bad-record", 'm.jsonl:4: "duration" must be a number of seconds >= 0, not nan'),
    ],
)  # fmt: skip
def test_bad_records_are_refused_with_their_line(obj, kind, message):
    with pytest.raises(Rejected) as e:
        check_record(obj, "m.jsonl:4")
    assert (e.value.kind, str(e.value)) == (kind, message)


def test_iter_manifest_yields_records_and_errors_by_line(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio": "clips/a.wav", "text": "One."},
            "",
            "   ",
            "{oops",
            {"audio": "/abs/b.wav", "text": "Two.", "x": 1},
        ],
    )
    entries = list(iter_manifest(path))
    assert [e.where for e in entries] == [f"{path}:1", f"{path}:4", f"{path}:5"]  # blank lines skipped
    assert entries[0].record == {"audio": str(tmp_path / "clips" / "a.wav"), "text": "One."}
    assert entries[1].record is None and entries[1].error.kind == "bad-json"
    assert str(entries[1].error).startswith(f"{path}:4: invalid JSON (")
    assert entries[1].original == "{oops"
    assert entries[2].record == {"audio": "/abs/b.wav", "text": "Two.", "x": 1}


def test_iter_manifest_is_lazy(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"audio": "a.wav", "text": "hi"}])
    it = iter_manifest(path)
    path.unlink()  # opened on the first next(), not before: a generator
    with pytest.raises(VoxloraError, match="no such file"):
        next(it)


def test_stdin_paths_resolve_against_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = '\ufeff{"audio": "x/a.wav", "text": "hi"}\n'.encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    (entry,) = iter_manifest("-")
    assert entry.where == "<stdin>:1"
    assert entry.record["audio"] == os.path.join(str(tmp_path), "x", "a.wav")


def test_non_utf8_line_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"audio": "a.wav", "text": "caf\xe9"}\n{"audio": "b.wav", "text": "ok"}\n')
    first, second = iter_manifest(path)
    assert first.error.kind == "bad-encoding"
    assert str(first.error) == f"{path}:1: not UTF-8 (byte 0xe9 at column 32)"
    assert second.record["text"] == "ok"


def test_a_reason_key_from_a_rejects_file_is_dropped(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"audio": "a.wav", "text": "fixed", "reason": "was empty"}])
    (entry,) = iter_manifest(path)
    assert "reason" not in entry.record


def test_read_manifest_collects_or_raises(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"audio": "a.wav", "text": "hi"}, {"audio": "b.wav"}])
    records, errors = read_manifest(path)
    assert [r["audio"] for r in records] == [str(tmp_path / "a.wav")]
    assert [str(e) for e in errors] == [f'{path}:2: missing "text"']
    with pytest.raises(Rejected, match=r':2: missing "text"$'):
        read_manifest(path, strict=True)
    with pytest.raises(VoxloraError, match="nope.jsonl: no such file"):
        read_manifest(tmp_path / "nope.jsonl")
    with pytest.raises(VoxloraError, match="is a folder, not a manifest file"):
        read_manifest(tmp_path)


def test_resolve_audio(tmp_path):
    assert resolve_audio("a b/ü.wav", tmp_path) == str(tmp_path / "a b" / "ü.wav")
    assert resolve_audio("/x/y.wav", tmp_path) == "/x/y.wav"
    assert resolve_audio("~/y.wav", tmp_path) == os.path.expanduser("~/y.wav")


def test_writing_round_trips_and_keeps_unicode(tmp_path):
    records = [
        {"audio": "/a/Grüße.wav", "text": "Ça va? 你好"},
        {"audio": "/b.wav", "text": "x", "speaker": 1},
    ]
    stream = io.StringIO()
    for r in records:
        write_record(stream, r)
    assert "Grüße" in stream.getvalue()  # not \u escapes
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == records
    write_manifest(tmp_path / "out" / "m.jsonl", records)
    assert [e.record for e in iter_manifest(tmp_path / "out" / "m.jsonl")] == records
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["m.jsonl"]  # no temp file left


def test_other_trainers_layouts():
    rec = {"audio": "/a.wav", "text": "Hi.", "speaker": 3, "duration": 1.2, "sample_rate": 24000, "extra": 1}
    assert to_voxcpm(rec) == {"audio": "/a.wav", "text": "Hi.", "duration": 1.2}
    assert to_voxcpm({**rec, "dataset_id": 2})["dataset_id"] == 2
    assert to_csm_mlx(rec) == {"text": "Hi.", "audio_path": "/a.wav", "speaker_id": 3}
    assert to_csm_mlx({"audio": "/a.wav", "text": "Hi."})["speaker_id"] == 0
