"""synth's requests: plain-text and JSONL lines, defaults from the command line, one-line errors."""

from pathlib import Path

import pytest
from voxlora.errors import VoxloraError
from voxlora.synth.config import SynthConfig
from voxlora.synth.requests import ContextClip, make_request, read_requests


def test_plain_lines_are_numbered_into_the_out_dir_and_blank_lines_skipped():
    lines = ["Hello there.\n", "\n", "  Second line.  \n"]
    requests = list(read_requests(lines, SynthConfig(speaker=3, seed=9), out_dir="gen"))
    assert [(r.text, r.out, r.speaker, r.seed, r.where) for r in requests] == [
        ("Hello there.", Path("gen/0001.wav"), 3, 9, "<stdin>:1"),
        ("Second line.", Path("gen/0002.wav"), 3, 9, "<stdin>:3"),
    ]
    assert requests[0].adapter is None


def test_jsonl_records_override_the_defaults_and_keep_their_other_keys():
    config = SynthConfig(adapter="runs/a", context=[ContextClip("ref.wav", "Ref.")])
    lines = [
        '{"text": "A", "speaker": 2, "adapter": "runs/b", "out": "x/a.wav", "seed": 5, "id": "u1"}',
        '{"text": "B", "adapter": null, "context": [{"audio": "c.wav", "text": "C", "speaker": 1}]}',
        '{"text": "C", "adapter": "base"}',
        '{"text": "D"}',
    ]
    a, b, c, d = read_requests(lines, config, out_dir="gen")
    assert (a.out, a.speaker, a.adapter, a.seed, a.record["id"]) == (Path("x/a.wav"), 2, "runs/b", 5, "u1")
    assert b.adapter is None and b.context == [ContextClip("c.wav", "C", 1)]
    assert c.adapter is None
    assert d.adapter == "runs/a" and d.context == [ContextClip("ref.wav", "Ref.")]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": ""}', "<stdin>:1: empty text"),
        ('{"text": "   "}', "<stdin>:1: empty text"),
        ('{"speaker": 1}', '<stdin>:1: missing "text"'),
        ('{"text": "a", "speaker": -1}', '<stdin>:1: "speaker" must be an integer >= 0, got -1'),
        ('{"text": "a", "speaker": "x"}', "<stdin>:1: \"speaker\" must be an integer >= 0, got 'x'"),
        ('{"text": "a", "seed": 1.5}', '<stdin>:1: "seed" must be an integer, got 1.5'),
        ('{"text": "a", "adapter": 3}', '<stdin>:1: "adapter" must be a path, "base" or null, got 3'),
        ('{"text": "a", "context": {}}', '<stdin>:1: "context" must be a list of {"audio", "text"} objects'),
        (
            '{"text": "a", "context": [{"text": "t"}]}',
            '<stdin>:1: context[0]: needs "audio" (a path) and "text"',
        ),
        ('{"text": "a", "context": [{"audio": "c.wav", "text": ""}]}', "<stdin>:1: context[0]: empty text"),
        ('{"text": "a"', "<stdin>:1: not valid JSON (Expecting ',' delimiter)"),
    ],
)
def test_bad_lines_give_one_line_errors(line, message):
    [error] = read_requests([line], SynthConfig(), out_dir="gen")
    assert isinstance(error, VoxloraError)
    assert str(error) == message


def test_a_bad_line_does_not_end_the_stream():
    good, bad, also_good = read_requests(["a", '{"text": 3}', "c"], SynthConfig(), out_dir="gen")
    assert (good.text, also_good.text) == ("a", "c")
    assert str(bad) == '<stdin>:2: "text" must be a string, got 3'


def test_raw_lines_are_decoded_one_by_one_and_a_non_utf8_line_is_one_error():
    lines = [b"caf\xc3\xa9\n", b"\n", b'{"text": "na\xefve"}\n', b"last\r\n"]
    first, bad, last = read_requests(lines, SynthConfig(), out_dir="gen")
    assert (first.text, first.out, last.text, last.out) == (
        "café",
        Path("gen/0001.wav"),
        "last",
        Path("gen/0003.wav"),
    )
    assert isinstance(bad, VoxloraError)
    assert str(bad) == "<stdin>:3: not UTF-8 (byte 0xef at column 13)"


def test_without_out_or_out_dir_a_line_is_refused():
    first, second = read_requests(['{"text": "a", "out": "a.wav"}', "b"], SynthConfig())
    assert first.out.name == "a.wav"
    assert str(second) == '<stdin>:2: no "out" in the record and no --out-dir'


def test_a_command_line_request_has_no_location_prefix():
    request = make_request({"text": "Hi."}, 1, SynthConfig(), None, "", out="hi.wav")
    assert (request.out, request.where) == (Path("hi.wav"), "")
    with pytest.raises(VoxloraError, match=r"^empty text$"):
        make_request({"text": ""}, 1, SynthConfig(), None, "", out="hi.wav")


def test_requests_are_read_lazily():
    def lines():
        yield "first"
        raise AssertionError("read ahead")

    assert next(read_requests(lines(), SynthConfig(), out_dir="gen")).text == "first"
