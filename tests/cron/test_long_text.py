"""synth on long texts: sentence chunks within --max-seconds, each after the previous as context,
joined by a pause; --max-total-seconds bounds the whole."""

import json

import pytest
import soundfile as sf
from click.testing import CliRunner
from voxlora.cli.synth import main
from voxlora.synth import long_text, synthesizer

TEXT = "The birch canoe slid on. Glue the sheet to it! It is easy to tell? Four hours of work."


def test_chunks_end_at_sentences_and_fit_the_budget():
    chunks = long_text.chunk_text(TEXT, 28)
    assert chunks == [
        "The birch canoe slid on.",
        "Glue the sheet to it!",
        "It is easy to tell?",
        "Four hours of work.",
    ]
    assert long_text.chunk_text(TEXT, 50) == [
        "The birch canoe slid on. Glue the sheet to it!", "It is easy to tell? Four hours of work."]  # fmt: skip
    long_one = "One sentence, with clauses; that runs on and on, far beyond the budget of a chunk."
    assert long_text.chunk_text(long_one, 30) == [  # cut at clause marks, never mid-clause
        "One sentence, with clauses;", "that runs on and on,", "far beyond the budget of a chunk."]  # fmt: skip
    assert long_text.split_request("Short.  Text.", 10) == ["Short.  Text."]  # one generation: untouched
    assert long_text.split_request("Hello there, you.", 0.24) == ["Hello there, you."]  # never under 80 chars


@pytest.fixture
def prompts(monkeypatch):
    seen = []
    real = synthesizer.Synthesizer._generate

    def generate(self, turns, max_frames, seed):
        seen.append([(t.text, t.audio is not None) for t in turns])
        return real(self, turns, max_frames, seed)

    monkeypatch.setattr(synthesizer.Synthesizer, "_generate", generate)
    return seen


def speak(model, out, *args):
    result = CliRunner().invoke(
        main.cli, ["--model", str(model), "--temperature", "0", TEXT, "-o", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def fast_speech(monkeypatch):  # 28 characters a chunk within --max-seconds 0.5: short generations
    monkeypatch.setattr(long_text, "CHARS_PER_SECOND", 56.0)
    monkeypatch.setattr(long_text, "MIN_CHUNK_CHARS", 1)


def test_a_long_text_is_spoken_in_chunks_with_the_previous_as_context(
    tiny_csm, tmp_path, prompts, fast_speech
):
    record = speak(tiny_csm, tmp_path / "a.wav", "--max-seconds", 0.5)
    assert record["chunks"] == 4 and record["text"] == TEXT
    assert prompts[0] == [("The birch canoe slid on.", False)]
    assert prompts[1] == [("The birch canoe slid on.", True), ("Glue the sheet to it!", False)]
    assert prompts[3][-2:] == [("It is easy to tell?", True), ("Four hours of work.", False)]
    x, sr = sf.read(tmp_path / "a.wav")
    assert (
        len(x) / sr == pytest.approx(record["duration"], abs=1e-3)
        and record["duration"] <= 4 * 0.5 + 3 * 0.25
    )


def test_max_total_seconds_bounds_the_whole(tiny_csm, tmp_path, prompts, fast_speech):
    record = speak(tiny_csm, tmp_path / "b.wav", "--max-seconds", 0.5, "--max-total-seconds", 0.9)
    assert record["duration"] <= 0.9 and record["ended"] == "max-total-seconds"
    assert record["chunks"] == len(prompts) <= 2
