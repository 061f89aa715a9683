"""Speaker embeddings on real speech: one voice is closer to itself than to another voice or noise."""

import importlib.util

import numpy as np
import pytest

from tests import voices

if importlib.util.find_spec("resemblyzer") is None:  # only its weights file is used; importing it fails
    pytest.skip(
        'the default speaker encoder is the [eval] extra: pip install "voxlora[eval]"',
        allow_module_level=True,
    )
pytest.importorskip("hibari", reason="hibari-tts (the [demo] extra) speaks the test sentences")
pytest.importorskip("espeakng_loader", reason="espeakng-loader (the [dev] extra) is the second voice")

TEXTS = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "Rice is often served in round bowls.",
)


def speech_shaped_noise(samples: np.ndarray, seed: int = 0) -> np.ndarray:
    """The clip's magnitude spectrum with random phases: speech's colour, no speech in it."""
    rng = np.random.default_rng(seed)
    spectrum = np.abs(np.fft.rfft(samples))
    return np.fft.irfft(spectrum * np.exp(2j * np.pi * rng.random(len(spectrum))), len(samples)).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def encoder():
    from voxlora.speaker_embed import load_speaker_encoder

    return load_speaker_encoder()


def mean_sim(a, b):
    from voxlora.scoring import cosine

    return float(np.mean([cosine(x, y) for x in a for y in b if x is not y]))


def test_two_clips_of_one_voice_are_closer_than_two_voices_and_noise_is_farthest(encoder):
    hib = [encoder.embed(*voices.hibari(t, seed=i)) for i, t in enumerate(TEXTS)]
    esp = [encoder.embed(*voices.espeak(t)) for t in TEXTS]
    x, rate = voices.hibari(TEXTS[0], seed=0)
    noise = [encoder.embed(speech_shaped_noise(x, seed=s), rate) for s in range(2)]
    for v in hib + esp:
        assert v.shape == (256,) and v.dtype == np.float32 and abs(np.linalg.norm(v) - 1) < 1e-5
    same_h, same_e, across = mean_sim(hib, hib), mean_sim(esp, esp), mean_sim(hib, esp)
    assert same_h > 0.8 and same_e > 0.75, (same_h, same_e)
    assert across < min(same_h, same_e) - 0.15, (same_h, same_e, across)
    assert mean_sim(noise, hib) < across and mean_sim(noise, esp) < across


def test_embedding_is_deterministic_and_rate_independent(encoder):
    from voxlora import audio
    from voxlora.scoring import cosine

    x, rate = voices.hibari(TEXTS[1], seed=1)
    a = encoder.embed(x, rate)
    np.testing.assert_array_equal(a, encoder.embed(x, rate))
    assert cosine(a, encoder.embed(audio.resample(x, rate, 16000), 16000)) > 0.99


def test_mel_front_end_matches_librosa():
    librosa = pytest.importorskip("librosa")
    from voxlora.speaker_embed import mel_spectrogram

    x = voices.noise(1.0, 16000)[0]
    ours = mel_spectrogram(x)
    ref = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


def test_a_transformers_xvector_folder_loads(tmp_path):
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector
    from voxlora.speaker_embed import load_speaker_encoder

    torch.manual_seed(0)
    config = WavLMConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, tdnn_dim=(16, 16), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1),
        xvector_output_dim=24,
    )  # fmt: skip
    WavLMForXVector(config).save_pretrained(tmp_path / "wavlm")
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(tmp_path / "wavlm")
    enc = load_speaker_encoder(str(tmp_path / "wavlm"))
    x, rate = voices.hibari(TEXTS[2], seed=2)
    v = enc.embed(x, rate)
    assert enc.name == str(tmp_path / "wavlm")
    assert v.shape == (24,) and abs(np.linalg.norm(v) - 1) < 1e-5
    np.testing.assert_allclose(v, enc.embed(x, rate), atol=1e-6)


def test_a_missing_encoder_is_one_line(tmp_path):
    from voxlora.errors import VoxloraError
    from voxlora.speaker_embed import load_speaker_encoder

    with pytest.raises(VoxloraError, match="cannot load this speaker encoder"):
        load_speaker_encoder(str(tmp_path / "nope"))


def test_a_clip_shorter_than_the_smoothing_window_embeds(encoder):
    x = voices.noise(0.16, 16000)[0]  # five 30 ms windows: fewer than the 8 the smoothing spans
    assert encoder.embed(x, 16000).shape == (256,)
