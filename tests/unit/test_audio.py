"""Audio: reading every format to mono float32, the reasons a file is bad, resampling, atomic WAV writing."""

import numpy as np
import pytest
import soundfile as sf
from voxlora import audio
from voxlora.rejects import Rejected

from tests.datagen import speechlike, write_wav


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".mp3"])
def test_load_reads_every_format_to_mono_float32(tmp_path, ext):
    path = write_wav(tmp_path / f"a{ext}", 0.5, 16000, seed=1, channels=2)
    x, sr = audio.load(path)
    assert sr == 16000 and x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 8000) <= 1200  # mp3/ogg codecs pad a little
    assert 0.2 < np.abs(x).max() <= 1.0


def test_load_mixes_channels_by_averaging(tmp_path):
    left = np.full(100, 0.5, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, -left / 2], axis=1), 8000, subtype="FLOAT")
    x, _ = audio.load(tmp_path / "s.wav")
    np.testing.assert_allclose(x, 0.125)


def test_load_reads_bytes(tmp_path):
    data = write_wav(tmp_path / "a.wav", 0.25, 24000).read_bytes()
    x, sr = audio.load(data)
    assert (len(x), sr) == (6000, 24000)


def _kind_and_message(source):
    with pytest.raises(Rejected) as e:
        audio.load(source)
    return e.value.kind, str(e.value)


def test_unreadable(tmp_path):
    (tmp_path / "n.wav").write_bytes(np.random.default_rng(0).bytes(1000))
    assert _kind_and_message(tmp_path / "n.wav") == ("unreadable", "unreadable audio (Format not recognised)")
    (tmp_path / "t.txt").write_text("hello")
    assert _kind_and_message(tmp_path / "t.txt")[0] == "unreadable"


def test_missing_file_and_folder(tmp_path):
    assert _kind_and_message(tmp_path / "gone.wav") == ("missing-file", "file not found")
    assert _kind_and_message(str(tmp_path)) == ("not-a-file", "is a folder, not an audio file")


def test_truncated_wav(tmp_path):
    data = write_wav(tmp_path / "a.wav", 1.0, 16000).read_bytes()
    (tmp_path / "t.wav").write_bytes(data[:1044])  # header + 1000 bytes of 32000
    assert _kind_and_message(tmp_path / "t.wav") == (
        "truncated",
        "truncated (the header promises 32000 bytes of samples, the file holds 1000)",
    )
    (tmp_path / "h.wav").write_bytes(data[:44])  # header only: truncated, not empty
    assert _kind_and_message(tmp_path / "h.wav")[0] == "truncated"


def test_truncated_mp3_and_flac(tmp_path):
    for ext, kind in ((".mp3", "truncated"), (".flac", "corrupt")):
        data = write_wav(tmp_path / f"a{ext}", 1.0, 16000).read_bytes()
        (tmp_path / f"t{ext}").write_bytes(data[: len(data) // 2])
        assert _kind_and_message(tmp_path / f"t{ext}")[0] == kind


def test_empty_and_nan(tmp_path):
    sf.write(tmp_path / "e.wav", np.zeros(0, np.float32), 16000)
    assert _kind_and_message(tmp_path / "e.wav") == ("empty", "empty (no samples)")
    x = speechlike(0.1, 16000)
    x[5] = np.inf
    sf.write(tmp_path / "n.wav", x, 16000, subtype="FLOAT")
    assert _kind_and_message(tmp_path / "n.wav") == ("nan", "NaN or infinite samples")


def test_check_finds_silence_but_not_quiet_speech():
    with pytest.raises(Rejected, match=r"^silent \(every sample below -80 dBFS\)$"):
        audio.check(np.zeros(1000, np.float32))
    with pytest.raises(Rejected, match="silent"):
        audio.check(np.full(1000, 5e-5, np.float32))
    audio.check(speechlike(0.1, 16000) * 0.01)  # -46 dBFS speech is fine
    with pytest.raises(Rejected, match="empty"):
        audio.check(np.zeros(0, np.float32))
    with pytest.raises(Rejected, match="NaN"):
        audio.check(np.array([0.1, np.nan], np.float32))


def test_resample_changes_length_by_the_ratio_and_keeps_a_tone():
    sr, target = 16000, 24000
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = audio.resample(x, sr, target)
    assert y.dtype == np.float32 and y.shape == (target,)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s long: bin k is k Hz
    assert audio.resample(x, sr, sr) is x


def test_write_wav_is_16bit_mono_clipped_and_atomic(tmp_path):
    x = np.array([0.0, 0.5, 2.0, -3.0], np.float32)
    audio.write_wav(tmp_path / "sub" / "o.wav", x, 24000)
    info = sf.info(tmp_path / "sub" / "o.wav")
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (24000, 1, "PCM_16", 4)
    y, _ = sf.read(tmp_path / "sub" / "o.wav", dtype="float32")
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0, -1.0], atol=1e-4)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["o.wav"]
    assert audio.wav_bytes(x, 24000)[:4] == b"RIFF"


def test_duration_in_milliseconds():
    assert audio.duration(np.zeros(36001, np.float32), 24000) == 1.5
