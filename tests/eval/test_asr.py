"""The offline recogniser on real speech: its own text scores low, another text high, noise worst."""

import numpy as np
import pytest

from tests import voices

pytest.importorskip(
    "pocketsphinx", reason='the default recogniser is the [eval] extra: pip install "voxlora[eval]"'
)
pytest.importorskip("jiwer", reason='scoring is the [eval] extra: pip install "voxlora[eval]"')
pytest.importorskip("hibari", reason="hibari-tts (the [demo] extra) speaks the test sentences")

TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "A rainbow is a division of white light into many beautiful colors.",
    "The juice of lemons makes fine punch.",
)


@pytest.fixture(scope="module")
def recognizer():
    from voxlora.asr import load_recognizer

    return load_recognizer()


def test_default_recogniser_is_offline_pocketsphinx(recognizer):
    from voxlora.asr import DEFAULT_RECOGNIZER

    assert recognizer.name == DEFAULT_RECOGNIZER == "pocketsphinx-en-us"


def test_real_speech_scores_low_against_its_text_and_high_against_another(recognizer):
    from voxlora.scoring import wer

    own, other = [], []
    for i, text in enumerate(TEXTS):
        samples, rate = voices.hibari(text, seed=i)
        t = recognizer.transcribe(samples, rate)  # 24 kHz in: resampled inside
        assert 0.0 < t.confidence <= 1.0
        own.append(wer(text, t.text))
        other.append(wer(TEXTS[(i + 1) % len(TEXTS)], t.text))
    assert np.mean(own) < 0.3, own
    assert np.mean(other) > 0.8, other
    assert min(other) > max(own)


def test_noise_and_silence_are_recognised_as_nothing_much(recognizer):
    from voxlora.scoring import wer

    samples, rate = voices.noise(2.0, 16000)
    t = recognizer.transcribe(samples, rate)
    assert wer(TEXTS[0], t.text) >= 0.9
    silent = recognizer.transcribe(np.zeros(16000, np.float32), 16000)
    assert silent.text == "" and silent.confidence == 0.0
    assert recognizer.transcribe(np.zeros(0, np.float32), 16000) == type(t)("", 0.0)


def test_stereo_and_any_rate_are_accepted(recognizer):
    from voxlora.scoring import wer

    samples, rate = voices.hibari(TEXTS[2], seed=2)
    stereo = np.stack([samples, samples], axis=1)
    t = recognizer.transcribe(stereo, rate)
    assert wer(TEXTS[2], t.text) < 0.5
