"""The demo corpus: real speech from hibari-tts, saved as a local HF dataset, the same bytes every time."""

import pytest
from voxlora.hf import FetchConfig, fetch
from voxlora.rejects import Tally
from voxlora.speakers import SpeakerMap

pytest.importorskip("hibari", reason="hibari-tts is the optional [demo] dependency")


def test_two_sentences_make_a_deterministic_dataset_hf_fetch_reads(tmp_path):
    import datasets
    from voxlora.demo_corpus import make_corpus

    sentences = ("Hello there.", "Good morning.")
    make_corpus(tmp_path / "a", sentences)
    make_corpus(tmp_path / "b", sentences)
    a = datasets.load_from_disk(str(tmp_path / "a"))["train"].cast_column(
        "audio", datasets.Audio(decode=False)
    )
    b = datasets.load_from_disk(str(tmp_path / "b"))["train"].cast_column(
        "audio", datasets.Audio(decode=False)
    )
    assert a["text"] == list(sentences) and a["speaker_id"] == ["heart", "heart"]
    assert [r["bytes"] for r in a["audio"]] == [r["bytes"] for r in b["audio"]]
    records = list(fetch(FetchConfig(str(tmp_path / "a"), str(tmp_path / "clips")), SpeakerMap(), Tally()))
    assert [r["text"] for r in records] == list(sentences)
    assert all(r["sample_rate"] == 22050 and 0.4 < r["duration"] < 3 for r in records)


def test_held_out_sentences_are_not_trained_on_and_make_a_manifest(tmp_path):
    import json

    from voxlora.demo_corpus import HELD_OUT, SENTENCES, write_held_out

    assert not set(HELD_OUT) & set(SENTENCES)
    manifest = write_held_out(tmp_path / "held-out", HELD_OUT[:1])
    [record] = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert record["text"] == HELD_OUT[0] and record["speaker"] == 0 and 1 < record["duration"] < 6
    from voxlora import audio

    x, rate = audio.load(record["audio"])
    assert rate == 24000 and len(x) / rate == pytest.approx(record["duration"], abs=1e-3)
