"""Corpus layouts on disk: each one read into the records mkmanifest expects, and their bad inputs."""

import json

import pytest
from voxlora.corpora import detect_layout, iter_source
from voxlora.errors import VoxloraError

from tests.datagen import CORPUS_LAYOUTS, make_bad_folder, make_corpus_folder, sentence, write_wav


def _records(source):
    entries = list(iter_source(source))
    assert all(e.error is None for e in entries), [str(e.error) for e in entries if e.error]
    return [e.record for e in entries]


@pytest.mark.parametrize("layout", CORPUS_LAYOUTS)
def test_every_layout_reads_audio_text_and_speaker(tmp_path, layout):
    expected = make_corpus_folder(tmp_path / layout, layout, n=4)
    records = _records(tmp_path / layout)
    assert [r["audio"] for r in records] == [e["audio"] for e in expected]
    assert [r["text"] for r in records] == [e["text"] for e in expected]
    if layout == "csm_mlx":
        assert [r["speaker"] for r in records] == [e["speaker"] for e in expected]
    else:
        assert [r.get("speaker_name") for r in records] == [e["speaker_name"] for e in expected]


@pytest.mark.parametrize(
    "layout, name, target",
    [
        ("libritts", "sidecar", "."),
        ("plain", "sidecar", "."),
        ("ljspeech", "ljspeech", "metadata.csv"),
        ("common_voice", "commonvoice", "validated.tsv"),
        ("audiofolder", "audiofolder", "metadata.csv"),
        ("csm_mlx", "csm-mlx", "dataset.json"),
    ],
)
def test_detect_layout(tmp_path, layout, name, target):
    make_corpus_folder(tmp_path, layout, n=1)
    assert detect_layout(tmp_path) == (name, (tmp_path / target) if target != "." else tmp_path)


def test_the_corpus_files_themselves_are_inputs_too(tmp_path):
    make_corpus_folder(tmp_path / "cv", "common_voice", n=2)
    make_corpus_folder(tmp_path / "lj", "ljspeech", n=2)
    make_corpus_folder(tmp_path / "mlx", "csm_mlx", n=2)
    assert len(_records(tmp_path / "cv" / "validated.tsv")) == 2
    assert len(_records(tmp_path / "lj" / "metadata.csv")) == 2
    assert len(_records(tmp_path / "mlx" / "dataset.json")) == 2


def test_libritts_prefers_normalized_then_original_then_txt(tmp_path):
    wav = write_wav(tmp_path / "19_198_000001_000000.wav", 0.2, 16000)
    for suffix, text in ((".txt", "plain"), (".original.txt", "ORIGINAL"), (".normalized.txt", "normalized")):
        wav.with_name(wav.stem + suffix).write_text(text)
        assert _records(tmp_path)[0]["text"] == text
    assert _records(tmp_path)[0]["speaker_name"] == "19"


def test_ljspeech_falls_back_to_the_raw_text_and_reports_bad_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "wavs" / "a.wav", 0.2, 22050)
    (tmp_path / "metadata.csv").write_text("a|Dr. Smith paid $4.|\nbroken line\nb|  |  \n", encoding="utf-8")
    ok, broken, empty = iter_source(tmp_path)
    assert ok.record["text"] == "Dr. Smith paid $4."
    assert (broken.error.kind, str(broken.error)) == (
        "bad-record",
        'metadata.csv:2: expected "id|text|normalized text"',
    )
    assert (empty.error.kind, empty.where) == ("no-text", "metadata.csv:3")


def test_ljspeech_text_with_quotes_is_kept_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metadata.csv").write_text('a|He said "no," twice.|He said "no," twice.\n', encoding="utf-8")
    (entry,) = iter_source(tmp_path)
    assert entry.record["text"] == 'He said "no," twice.'
    assert entry.record["audio"] == str(tmp_path / "wavs" / "a.wav")  # missing: the worker reports it


def test_common_voice_needs_its_columns_and_counts_fields(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.tsv").write_text("path\tclient_id\nx.mp3\tabc\n", encoding="utf-8")
    with pytest.raises(VoxloraError, match=r'^train.tsv:1: not a Common Voice TSV \(no "sentence" column'):
        list(iter_source(tmp_path / "train.tsv"))
    (tmp_path / "train.tsv").write_text("path\tsentence\tclient_id\nx.mp3\tHi\nonly\n", encoding="utf-8")
    a, b = iter_source(tmp_path / "train.tsv")
    assert str(a.error) == "train.tsv:2: expected 3 tab-separated fields, found 2"
    assert b.error.kind == "bad-record"


def test_a_bad_byte_in_an_audiofolder_csv_costs_one_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metadata.csv").write_bytes(
        b"file_name,transcription\r\n"
        b"a.wav,first\r\n"
        b"b.wav,caf\xe9\r\n"  # latin-1
        b'c.wav,"two\r\nlines"\r\n'
        b"\r\n"
        b"d.wav,last\r\n"
    )
    entries = list(iter_source("metadata.csv"))
    assert [(e.where, e.record and e.record["text"]) for e in entries] == [
        ("metadata.csv:2", "first"),
        ("metadata.csv:3", None),
        ("metadata.csv:5", "two\r\nlines"),  # a quoted field across lines is still one row
        ("metadata.csv:7", "last"),
    ]
    assert (entries[1].error.kind, str(entries[1].error)) == (
        "bad-encoding",
        "metadata.csv:3: not UTF-8 (byte 0xe9 at column 10)",
    )
    (tmp_path / "metadata.csv").write_bytes(b"file_name,transcripci\xf3n\na.wav,hola\n")
    with pytest.raises(VoxloraError, match=r"^metadata.csv:1: not UTF-8 \(byte 0xf3 at column 22\)$"):
        list(iter_source("metadata.csv"))


def test_csm_mlx_whole_file_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.json").write_text('[\n {"text": "a",\n}\n]')
    with pytest.raises(VoxloraError, match=r"^d.json:3: invalid JSON \("):
        list(iter_source("d.json"))
    (tmp_path / "d.json").write_text(
        json.dumps([{"text": "a"}, "x", {"audio_path": "a.wav", "text": "hi", "speaker_id": "bob"}])
    )
    missing, not_obj, named = iter_source("d.json")
    assert str(missing.error) == 'd.json[0]: missing "audio_path"'
    assert str(not_obj.error) == "d.json[1]: not a JSON object"
    assert named.record == {"audio": str(tmp_path / "a.wav"), "text": "hi", "speaker_name": "bob"}
    (tmp_path / "d.json").write_bytes(b'[\n {"text": "caf\xe9", "audio_path": "a.wav"}\n]')
    with pytest.raises(VoxloraError, match=r"^d.json:2: not UTF-8 \(byte 0xe9 at column 15\)$"):
        list(iter_source("d.json"))


def test_bad_transcripts_in_a_folder(tmp_path, monkeypatch):
    good, bad = make_bad_folder(tmp_path / "c")
    monkeypatch.chdir(tmp_path / "c")
    entries = list(iter_source("."))
    kept = sorted(e.where for e in entries if e.error is None)
    assert kept == sorted(good)  # spaces and non-ASCII names work; .hidden/ is not walked
    errors = {e.where: e.error for e in entries if e.error is not None}
    assert {w: e.kind for w, e in errors.items()} == bad
    assert (
        str(errors["latin1.wav"])
        == "latin1.wav: transcript latin1.txt is not UTF-8 (byte 0xe9 at position 3)"
    )
    assert str(errors["blank.wav"]) == "blank.wav: empty transcript (blank.txt)"
    assert str(errors["untranscribed.wav"]) == (
        "untranscribed.wav: no transcript beside it (untranscribed.normalized.txt, .original.txt, .txt or .lab)"
    )


def test_a_missing_input_is_one_error(tmp_path):
    with pytest.raises(VoxloraError, match=r"nope: no such file or folder$"):
        iter_source(tmp_path / "nope")


def test_folder_order_is_sorted_and_stable(tmp_path):
    for name in ["b.wav", "a.wav", "c/a.wav"]:
        write_wav(tmp_path / name, 0.1, 8000).with_suffix(".txt").write_text(sentence(0))
    names = [e.where.rsplit("/", 2)[-2:] for e in iter_source(tmp_path)]
    assert [n[-1] for n in names] == ["a.wav", "b.wav", "a.wav"]


@pytest.mark.parametrize(
    "name, good",
    [("metadata.csv", b"a|Hello.|\n"), ("metadata.jsonl", b'{"file_name": "a.wav", "text": "Hello."}\n')],
)
def test_a_line_that_does_not_decode_costs_that_line_in_ljspeech_and_jsonl(tmp_path, monkeypatch, name, good):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(good + b"caf\xe9|x\n\n" + good)
    ok, bad, again = iter_source(tmp_path)
    assert (ok.where, ok.record["text"], again.where, again.record["text"]) == (
        f"{name}:1", "Hello.", f"{name}:4", "Hello."
    )  # fmt: skip
    assert (bad.error.kind, str(bad.error)) == (
        "bad-encoding",
        f"{name}:2: not UTF-8 (byte 0xe9 at column 4)",
    )
