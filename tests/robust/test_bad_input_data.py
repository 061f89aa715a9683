"""The audio half of the bad-input corpus through mkmanifest and lora-train: one line per bad record,
naming its line and file, no traceback, and every good clip kept."""

import json

import pytest
from click.testing import CliRunner

from tests.robust.badinput import make_audio_corpus


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_audio_corpus(tmp_path)


def test_mkmanifest_reports_each_bad_record_and_keeps_every_good_one(corpus):
    from voxlora.cli.mkmanifest import main

    manifest, good, said = corpus
    result = CliRunner().invoke(main.cli, [manifest.name, "--max-duration", 5])
    assert result.exit_code == 0, result.output
    kept = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["audio"].rsplit("/", 1)[1] for r in kept] == good[:-1]
    assert [r["sample_rate"] for r in kept] == [16000, 22050, 44100, 8000, 96000]
    log = result.stderr.splitlines()
    too_long = f"train.jsonl:23: clips/long.wav: too long ({8.0:.2f} s > --max-duration 5)"
    assert log[:-1] == [*said.values(), too_long]
    assert log[-1].startswith("kept 5 clips") and "rejected 17" in log[-1]
    assert "Traceback" not in result.output


def test_lora_train_skips_each_bad_record_with_one_line_and_trains_on_the_rest(tiny_csm, corpus):
    from voxlora.cli.lora_train import main

    manifest, good, said = corpus
    args = ["--model", tiny_csm, "--manifest", manifest.name, "-o", "run", "--max-steps", 1,
            "--max-batch-frames", 90]  # fmt: skip
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    log = result.stderr.splitlines()
    assert log[: len(said)] == list(said.values())
    assert log[len(said)].startswith("train.jsonl: kept 6 clips") and "rejected 16" in log[len(said)]
    assert (
        log[len(said) + 1].startswith("train.jsonl:23: clips/long.wav: ")
        and "--max-batch-frames 90" in log[len(said) + 1]
    )
    assert log[len(said) + 2].startswith("5 clips, ")  # the five good clips that fit: trained on
    assert json.loads(result.stdout.splitlines()[-1])["step"] == 1
    assert "Traceback" not in result.output

    strict = CliRunner().invoke(main.cli, [*map(str, args), "-o", "run2", "--strict"])
    assert (strict.exit_code, strict.stderr) == (1, f"Error: {said[2]}\n")
