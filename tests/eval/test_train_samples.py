"""lora-train --sample-every: listening samples through synth's code, scored into the metrics and the
plot; --keep-best keeps the adapter of the best step."""

import json

import pytest
from click.testing import CliRunner

pytest.importorskip(
    "pocketsphinx", reason='scoring the samples is the [eval] extra: pip install "voxlora[eval]"'
)


def train(*args):
    from voxlora.cli.lora_train import main

    return CliRunner().invoke(main.cli, list(map(str, args)))


def lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_samples_are_written_and_scored_and_the_best_is_kept(tiny_csm, held_out, tmp_path):
    from voxlora.adapter import read_adapter

    out = tmp_path / "run"
    result = train("--model", tiny_csm, "--manifest", held_out, "-o", out, "--max-steps", 4, "--log-every", 2,
                   "--val-manifest", held_out, "--val-every", 2, "--sample-every", 2, "--sample-max-seconds", 0.4,
                   "--keep-best", "wer", "--lr", 1e-2)  # fmt: skip
    assert result.exit_code == 0, result.output
    records = lines(result.stdout)
    samples = [r for r in records if "samples" in r]
    assert [r["step"] for r in samples] == [2, 4]
    for r in samples:
        assert 0 <= r["wer"] and -1 <= r["speaker_sim"] <= 1
        wavs = sorted(p.name for p in (out / "samples" / f"step_{r['step']:07d}").iterdir())
        assert wavs == ["01.wav", "02.wav"] and r["samples"] == str(out / "samples" / f"step_{r['step']:07d}")
    assert not list((out / "samples").glob(".*"))  # the scratch adapters are gone
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m for m in metrics if "samples" in m] == samples
    best_step = min(samples, key=lambda r: r["wer"])["step"]  # the first of equals
    assert records[-1]["best"] == {
        "adapter": str(out / "best"),
        "step": best_step,
        "wer": min(r["wer"] for r in samples),
    }
    assert json.loads((out / "best" / "best.json").read_text())["step"] == best_step
    read_adapter(out / "best")
    assert (out / "loss.png").stat().st_size > 0


def test_sample_texts_file_and_usage_errors(tiny_csm, held_out, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("Hello there.\n\nGood morning.\nA third one.\n", encoding="utf-8")
    out = tmp_path / "run"
    result = train("--model", tiny_csm, "--manifest", held_out, "-o", out, "--max-steps", 2, "--log-every", 2,
                   "--sample-every", 2, "--sample-texts", texts, "--sample-max-seconds", 0.2)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "samples" / "step_0000002").iterdir()) == [
        "01.wav",
        "02.wav",
        "03.wav",
    ]
    bad = train("--model", tiny_csm, "--manifest", held_out, "-o", tmp_path / "r2", "--keep-best", "wer")
    assert bad.exit_code == 2 and "--keep-best wer needs --sample-every N" in bad.output
    bad = train("--model", tiny_csm, "--manifest", held_out, "-o", tmp_path / "r3", "--keep-best", "val_loss")
    assert bad.exit_code == 2 and "--keep-best val_loss needs --val-manifest" in bad.output
