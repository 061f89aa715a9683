"""Speaker names -> stable small integers, kept across runs through a speakers file."""

import json

import pytest
from voxlora.errors import VoxloraError
from voxlora.speakers import SpeakerMap


def test_first_seen_order_and_stable_repeats():
    m = SpeakerMap()
    assert [m(n) for n in ["1089", "121", "1089", 7, "7"]] == [0, 1, 0, 2, 2]  # 7 and "7" are one name
    assert len(m) == 3


def test_same_input_same_numbers():
    names = ["b", "a", "c", "a", "b"]
    first, second = SpeakerMap(), SpeakerMap()
    assert [first(n) for n in names] == [second(n) for n in names]


def test_a_speakers_file_keeps_ids_and_adds_new_names(tmp_path):
    path = tmp_path / "speakers.json"
    assert len(SpeakerMap.load(path)) == 0  # not there yet: empty
    m = SpeakerMap()
    m("anna"), m("bob")
    m.save(path)
    assert json.loads(path.read_text()) == {"anna": 0, "bob": 1}
    again = SpeakerMap.load(path)
    assert again("carl") == 2 and again("bob") == 1
    gaps = SpeakerMap({"x": 5})
    assert gaps("y") == 6


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": "0"}', '{"a": -1}'])
def test_a_bad_speakers_file_is_one_error(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(VoxloraError, match=r"s.json: not a speakers file"):
        SpeakerMap.load(path)


def test_describe_is_short():
    m = SpeakerMap()
    for name in ["19", "a" * 40] + [f"s{i}" for i in range(12)]:
        m(name)
    text = m.describe(limit=3)
    assert text.startswith("14 speakers: 19=0, aaaaaaaa…=1, s0=2")
    assert text.endswith("(11 more)")
