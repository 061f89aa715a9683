"""Synthesizer on the tiny CSM: --max-seconds holds, WAV length matches the codes, seeds reproduce,
codes are always decodable, and a failed generation is an error, never a placeholder."""

import numpy as np
import pytest
import soundfile as sf
import torch
from voxlora.errors import VoxloraError
from voxlora.synth import synthesizer as synth_module
from voxlora.synth.config import SynthConfig
from voxlora.synth.requests import Request
from voxlora.synth.synthesizer import Synthesizer


@pytest.fixture(scope="module")
def synth(tiny_csm):
    return Synthesizer(SynthConfig(model=str(tiny_csm), max_seconds=0.24))


def speak(synth, tmp_path, text="Hello there.", name="a.wav", **kw):
    return synth.speak(Request(text=text, out=tmp_path / name, **kw))


def test_max_seconds_holds_and_the_wav_matches_the_codes(synth, tmp_path):
    clip = speak(synth, tmp_path)
    frames = len(clip.codes)
    assert 1 <= frames <= 3  # 0.24 s at 12.5 frames/s
    x, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == 24000 and len(x) == frames * 1920
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    assert clip.record["duration"] <= 0.24
    assert clip.record == {
        "text": "Hello there.",
        "audio": str(tmp_path / "a.wav"),
        "speaker": 0,
        "duration": round(frames * 1920 / 24000, 3),
        "sample_rate": 24000,
        "adapter": None,
        "merged": False,
        "seed": 0,
        "frames": frames,
        "ended": clip.record["ended"],
    }


def test_the_same_seed_gives_the_same_audio_and_another_seed_other_audio(synth, tmp_path):
    a = speak(synth, tmp_path, name="a.wav", seed=3)
    speak(synth, tmp_path, name="other.wav", text="Something else entirely.", seed=4)  # RNG state moves on
    b = speak(synth, tmp_path, name="b.wav", seed=3)
    c = speak(synth, tmp_path, name="c.wav", seed=4)
    assert torch.equal(a.codes, b.codes)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert not torch.equal(a.codes, c.codes)


def test_speaker_and_text_change_the_audio(synth, tmp_path):
    base = speak(synth, tmp_path, name="a.wav")
    assert not torch.equal(base.codes, speak(synth, tmp_path, name="b.wav", speaker=3).codes)
    assert not torch.equal(base.codes, speak(synth, tmp_path, name="c.wav", text="Other words.").codes)


def test_sampling_never_emits_codes_the_codec_cannot_decode(synth, tmp_path):
    """At a high temperature the raw model picks ids 64..66 (Mimi's IndexError); voxlora never does."""
    model = synth.bundle.model
    inputs = synth.bundle.processor("<|begin_of_text|>[0]Hi.<|end_of_text|>")
    hot = dict(do_sample=True, temperature=5.0, top_k=0)
    hot.update({f"depth_decoder_{k}": v for k, v in hot.items()}, depth_decoder_suppress_tokens=None)
    torch.manual_seed(0)
    with torch.no_grad():
        raw = model.generate(**inputs, max_new_tokens=3, **hot)
    assert int(raw.max()) >= 64  # the problem is real on this model
    synth.config.temperature, synth.config.top_k = 5.0, 0
    try:
        clip = speak(synth, tmp_path)
    finally:
        synth.config.temperature, synth.config.top_k = SynthConfig.temperature, SynthConfig.top_k
    assert int(clip.codes.max()) < 64


def test_greedy_decoding_is_deterministic_without_a_seed(synth, tmp_path):
    synth.config.temperature = 0
    try:
        a = speak(synth, tmp_path, name="a.wav", seed=1)
        b = speak(synth, tmp_path, name="b.wav", seed=2)
    finally:
        synth.config.temperature = SynthConfig.temperature
    assert torch.equal(a.codes, b.codes)


def test_sample_rate_resamples_the_output(tiny_csm, tmp_path):
    synth = Synthesizer(SynthConfig(model=str(tiny_csm), max_seconds=0.24, sample_rate=16000))
    clip = speak(synth, tmp_path)
    x, sr = sf.read(tmp_path / "a.wav")
    assert sr == 16000 == clip.record["sample_rate"]
    assert abs(len(x) - len(clip.codes) * 1920 * 16000 // 24000) <= 1


def test_voice_cloning_context_changes_the_audio(synth, tmp_path):
    from voxlora.synth.requests import ContextClip

    t = np.arange(12000) / 24000
    sf.write(tmp_path / "ref.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 24000)
    plain = speak(synth, tmp_path, name="a.wav")
    cloned = speak(
        synth, tmp_path, name="b.wav", context=[ContextClip(str(tmp_path / "ref.wav"), "A reference.")]
    )
    assert not torch.equal(plain.codes, cloned.codes)


def test_an_eos_frame_first_is_an_error_and_writes_nothing(synth, tmp_path, monkeypatch):
    monkeypatch.setattr(synth_module, "generate_codes", lambda *a, **k: torch.zeros(3, 32, dtype=torch.long))
    with pytest.raises(VoxloraError, match=r"^<stdin>:4: the model ended the clip before any audio"):
        synth.speak(Request(text="Hi.", out=tmp_path / "a.wav", where="<stdin>:4"))
    assert not (tmp_path / "a.wav").exists()


def test_the_end_of_audio_frame_ends_the_clip(synth, tmp_path, monkeypatch):
    codes = torch.full((4, 32), 7)
    codes[2] = 0
    monkeypatch.setattr(synth_module, "generate_codes", lambda *a, **k: codes)
    clip = speak(synth, tmp_path)
    assert (clip.record["frames"], clip.record["ended"]) == (2, "eos")
    assert len(sf.read(tmp_path / "a.wav")[0]) == 2 * 1920


def test_a_prompt_longer_than_the_model_is_refused(synth, tmp_path):
    with pytest.raises(
        VoxloraError, match=r"plus 3 frames to generate is more than the model's 1024 positions"
    ):
        speak(synth, tmp_path, text="word " * 300)


@pytest.mark.parametrize(
    "seconds, message", [(0, "must be positive"), (0.05, "shorter than one audio frame")]
)
def test_max_seconds_too_small(tiny_csm, seconds, message):
    with pytest.raises(VoxloraError, match=message):
        Synthesizer(SynthConfig(model=str(tiny_csm), max_seconds=seconds))
