"""Which column is the transcript / audio / speaker, for the Hub layouts voxlora knows and any other."""

import pytest
from voxlora.columns import Columns, pick_columns, speaker_of, text_of
from voxlora.errors import VoxloraError

from tests.datagen import HF_LAYOUTS, hf_table

KNOWN = {
    "common_voice": Columns("audio", ("sentence",), "client_id"),
    "librispeech": Columns("audio", ("text",), "speaker_id"),
    "voxpopuli": Columns("audio", ("raw_text", "normalized_text"), "speaker_id"),
    "ljspeech": Columns("audio", ("normalized_text", "text"), None),
}


@pytest.mark.parametrize("layout", HF_LAYOUTS)
def test_hub_layouts_pick_their_columns(layout):
    columns, expected, _ = hf_table(layout, n=3)
    cols = pick_columns(list(columns), ["audio"])
    assert cols == KNOWN[layout]
    rows = [{k: v[i] for k, v in columns.items()} for i in range(3)]
    assert [text_of(r, cols) for r in rows] == [e["text"] for e in expected]
    assert [speaker_of(r, cols) for r in rows] == [e["speaker_name"] for e in expected]


def test_voxpopuli_empty_raw_text_falls_back_per_row():
    cols = KNOWN["voxpopuli"]
    assert text_of({"raw_text": "", "normalized_text": "hello"}, cols) == "hello"
    assert text_of({"raw_text": " Hello. ", "normalized_text": "hello"}, cols) == "Hello."
    assert text_of({"raw_text": "", "normalized_text": " "}, cols) is None


def test_named_columns_win_and_missing_ones_are_named():
    names = ["wav", "words", "who", "text"]
    assert pick_columns(names, text="words", audio="wav", speaker="who") == Columns("wav", ("words",), "who")
    with pytest.raises(VoxloraError) as e:
        pick_columns(names, text="sentence", what="ds")
    assert str(e.value) == "ds: no column 'sentence' (--text-column); the columns are: wav, words, who, text"


def test_no_transcript_or_audio_column_says_what_to_pass():
    with pytest.raises(VoxloraError, match=r"no transcript column found .*; pass --text-column$"):
        pick_columns(["audio", "label"])
    with pytest.raises(VoxloraError, match=r"no audio column found .*; pass --audio-column$"):
        pick_columns(["text", "label"])


def test_a_typed_audio_column_beats_a_path_column():
    assert pick_columns(["path", "speech", "sentence"], ["speech"]).audio == "speech"
    assert pick_columns(["path", "sentence"]).audio == "path"


def test_integer_speakers_become_names():
    cols = KNOWN["librispeech"]
    assert speaker_of({"speaker_id": 103}, cols) == "103"
    assert speaker_of({"speaker_id": None}, cols) is None
