"""mkmanifest --to chatml (Higgs Audio's voice-cloning records) and --to voxcpm, out and back."""

import json

from click.testing import CliRunner
from voxlora.chatml import SYSTEM_PROMPT, clips, pair_by_speaker, to_chatml
from voxlora.cli.mkmanifest import main

from tests.datagen import make_corpus_folder


def mk(*args, input=None):
    return CliRunner().invoke(main.cli, list(map(str, args)), input=input)


def jsonl(text):
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_reference_then_target_of_one_speaker():
    ref = {"audio": "/r.wav", "text": "Hello there.", "speaker": 2, "duration": 1.5}
    target = {"audio": "/t.wav", "text": "Goodbye.", "speaker": 2, "duration": 0.9}
    record = to_chatml(ref, target)
    assert record["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": {"type": "audio", "audio_url": "/r.wav"}},
        {"role": "user", "content": "Goodbye."},
        {"role": "assistant", "content": {"type": "audio", "audio_url": "/t.wav"}},
    ]
    assert record["speaker"] == 2
    assert clips(json.loads(json.dumps(record))) == (ref, target)
    bare = {"messages": record["messages"]}  # written by another tool: the messages alone
    assert clips(bare) == (
        {"audio": "/r.wav", "text": "Hello there."},
        {"audio": "/t.wav", "text": "Goodbye."},
    )


def test_pairing_streams_per_speaker():
    recs = [
        {"audio": f"/{n}.wav", "text": n, "speaker": s} for n, s in zip("abcde", [0, 1, 0, 0, 2], strict=True)
    ]
    unpaired = []
    pairs = [(clips(r)[0]["text"], clips(r)[1]["text"]) for r in pair_by_speaker(recs, unpaired)]
    assert pairs == [("c", "a"), ("a", "c"), ("c", "d")]
    assert unpaired == [1, 2]  # one clip each: no reference to clone from


def test_chatml_round_trip(tmp_path):
    make_corpus_folder(tmp_path / "c", "libritts", n=6)  # two speakers, three clips each
    plain = jsonl(mk(tmp_path / "c").stdout)
    result = mk(tmp_path / "c", "--to", "chatml")
    assert result.exit_code == 0, result.output
    records = jsonl(result.stdout)
    assert len(records) == 6  # every clip is the target of one record
    by_audio = {r["audio"]: r for r in plain}
    targets = []
    for record in records:
        ref, target = clips(record)
        assert ref == by_audio[ref["audio"]] and target == by_audio[target["audio"]]  # nothing lost
        assert ref["audio"] != target["audio"] and ref["speaker"] == target["speaker"] == record["speaker"]
        targets.append(target["audio"])
    assert sorted(targets) == sorted(by_audio)


def test_chatml_warns_about_single_clip_speakers(tmp_path):
    make_corpus_folder(tmp_path / "c", "libritts", n=3)  # speaker 19 has two clips, 1089 one
    result = mk(tmp_path / "c", "--to", "chatml")
    assert result.exit_code == 0, result.output
    assert len(jsonl(result.stdout)) == 2
    assert "no ChatML record for 1 speakers with a single clip (no reference)" in result.stderr


def test_voxcpm_round_trip(tmp_path):
    """VoxCPM's manifest (audio, text, duration) is itself a manifest mkmanifest reads back."""
    make_corpus_folder(tmp_path / "c", "plain", n=3)
    out = mk(tmp_path / "c", "--to", "voxcpm").stdout
    records = jsonl(out)
    assert [sorted(r) for r in records] == [["audio", "duration", "text"]] * 3
    (tmp_path / "voxcpm.jsonl").write_text(out)
    again = jsonl(mk(tmp_path / "voxcpm.jsonl", "--to", "voxcpm").stdout)
    assert again == records
