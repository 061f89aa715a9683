"""hf-fetch through click: records on stdout, logs on stderr, exit codes and one-line errors."""

import json

import pytest
import soundfile as sf
from click.testing import CliRunner
from voxlora.cli.hf_fetch import main

from tests.datagen import make_hf_dataset


def fetch(*args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "librispeech"
    make_hf_dataset(path, "librispeech", n=4)
    return path


def test_help_shows_a_piped_example():
    result = fetch("-h")
    assert result.exit_code == 0
    assert "hf-fetch ./my-dataset --limit 100 --out-dir clips | mkmanifest -" in result.stdout


def test_out_dir_is_required():
    result = fetch("some/dataset")
    assert result.exit_code == 2 and "Missing option '--out-dir'" in result.stderr


def test_records_on_stdout_logs_on_stderr(librispeech, tmp_path):
    result = fetch(librispeech, "--out-dir", tmp_path / "clips", "--limit", 3, "--sample-rate", 24000)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    assert list(records[0]) == [
        "audio",
        "text",
        "speaker",
        "speaker_name",
        "duration",
        "sample_rate",
        "source",
    ]
    assert [r["speaker_name"] for r in records] == ["103", "1034", "103"]
    assert [r["speaker"] for r in records] == [0, 1, 0]
    assert all(sf.info(r["audio"]).samplerate == 24000 for r in records)
    assert records[2]["source"] == {
        "dataset": str(librispeech),
        "config": None,
        "split": "train.clean.100",
        "row": 2,
    }
    assert result.stderr.splitlines()[-1] == f"{librispeech}: kept 3 clips (2.4 s); rejected 0"
    assert "{" not in result.stderr


def test_speakers_file_is_shared_with_mkmanifest(librispeech, tmp_path):
    (tmp_path / "s.json").write_text('{"1034": 0}')
    result = fetch(librispeech, "--out-dir", tmp_path / "c", "--limit", 2, "--speakers", tmp_path / "s.json")
    assert [json.loads(line)["speaker"] for line in result.stdout.splitlines()] == [1, 0]
    assert json.loads((tmp_path / "s.json").read_text()) == {"1034": 0, "103": 1}


def test_unknown_split_and_column_are_one_line_errors(librispeech, tmp_path):
    result = fetch(librispeech, "--out-dir", tmp_path, "--split", "test")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {librispeech}: no split 'test'; the splits are: train.clean.100, validation.clean\n"
    )
    result = fetch(librispeech, "--out-dir", tmp_path, "--speaker-column", "who")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {librispeech}: no column 'who' (--speaker-column); the columns are: file, "
    )


def test_offline_hub_dataset_is_one_line_without_trying_the_network(tmp_path, monkeypatch, network_calls):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = fetch("mozilla-foundation/common_voice_17_0", "--language", "en", "--out-dir", tmp_path)
    assert network_calls == []
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "Error: mozilla-foundation/common_voice_17_0: not a local file or folder, and the Hugging Face Hub is "
        "unreachable (HF_HUB_OFFLINE is set); give the path of a local dataset instead\n"
    )
