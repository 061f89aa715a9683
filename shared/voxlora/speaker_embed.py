"""Speaker embeddings: one vector per clip, whose cosine tells how alike two voices sound.

    enc = load_speaker_encoder()                                   # offline default (resemblyzer's weights)
    enc = load_speaker_encoder("microsoft/wavlm-base-plus-sv")     # a transformers x-vector model, or a folder
    enc.embed(samples, 24000)                                      # -> (D,) float32, unit length

- ``None`` (the default): the GE2E speaker encoder (Wan et al. 2018) whose trained weights ship inside
  the ``resemblyzer`` wheel (``pretrained.pt``, 17 MB; trained on LibriSpeech, VoxCeleb 1 and 2,
  English-heavy). Only its weights are used: resemblyzer's own module cannot be imported beside
  current packages (its voice-activity detector, webrtcvad, imports ``pkg_resources``, which
  setuptools >= 81 no longer ships, and it imports ``scipy.ndimage.morphology``, which scipy removed),
  so the network (3-layer LSTM 40 -> 256, linear 256 -> 256, ReLU, L2 norm) and its preprocessing
  (16 kHz, volume to -30 dBFS, long pauses cut, 40-band mel power spectrogram in 25 ms windows
  every 10 ms, 1.6 s partials at 1.3 a second, their mean) are written out here, and silence is
  found by frame energy instead of webrtcvad. The weights are read with torch's weights-only loader
  (no code in the file runs). Good for telling voices apart and for base-against-adapter
  comparisons (same speaker: cosine ~0.8-0.95; different speakers: ~0.5-0.75); not a verification
  system, and its numbers are not comparable with other encoders'.
- Any other name: a transformers audio x-vector checkpoint (``AutoModelForAudioXVector`` with its
  feature extractor), e.g. WavLM's speaker-verification head; its ``embeddings`` output, L2-normed.
"""

import importlib.util
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from voxlora import audio
from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora.speaker_embed")

DEFAULT_ENCODER = "resemblyzer-ge2e"  # what `load_speaker_encoder(None)` gives; its `name`
RATE = 16000
# GE2E's front end and partial utterances (resemblyzer/hparams.py).
N_FFT, HOP, N_MELS = 400, 160, 40  # 25 ms windows every 10 ms, 40 mel bands
PARTIAL_FRAMES = 160  # 1.6 s per partial utterance
PARTIALS_PER_S, MIN_COVERAGE = 1.3, 0.75
TARGET_DBFS = -30.0
# Pause trimming: 30 ms windows below (loudest - SILENCE_DB) are silence; smoothed over 8 windows,
# and a pause is kept up to 6 windows long (resemblyzer's VAD settings).
WINDOW, SILENCE_DB, SMOOTH, MAX_PAUSE = 480, 40.0, 8, 6


class SpeakerEncoder(Protocol):
    name: str

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


def _mono16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    return np.ascontiguousarray(audio.resample(audio.to_mono(x), int(sample_rate), RATE), dtype=np.float32)


def normalize_volume(x: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise the clip's RMS level to ``target_dbfs`` (never lowers it)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    if rms == 0.0:
        return x
    change = target_dbfs - 20.0 * np.log10(rms)
    return x if change < 0 else (x * 10.0 ** (change / 20.0)).astype(np.float32)


def trim_pauses(x: np.ndarray) -> np.ndarray:
    """Cut leading, trailing and long inner silences (found by energy), keeping short pauses."""
    n = len(x) // WINDOW
    if n == 0:
        return x
    frames = x[: n * WINDOW].reshape(n, WINDOW).astype(np.float64)
    db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    voiced = (db > db.max() - SILENCE_DB).astype(np.float64)
    smooth = _centred(voiced, np.ones(SMOOTH) / SMOOTH) >= 0.5
    keep = _centred(smooth.astype(np.float64), np.ones(MAX_PAUSE + 1)) > 0
    if not keep.any():
        return x
    return frames[keep].reshape(-1).astype(np.float32)


def _centred(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``np.convolve(x, kernel, "same")`` that keeps ``len(x)`` even when the kernel is longer."""
    start = (len(kernel) - 1) // 2
    return np.convolve(x, kernel, mode="full")[start : start + len(x)]


_MEL = None


def mel_spectrogram(x: np.ndarray) -> np.ndarray:
    """(n,) 16 kHz -> (frames, 40) mel power spectrogram (librosa's melspectrogram defaults: centred,
    zero-padded, periodic Hann, Slaney mel scale and norm)."""
    global _MEL
    if _MEL is None:
        from transformers.audio_utils import mel_filter_bank

        _MEL = mel_filter_bank(
            num_frequency_bins=N_FFT // 2 + 1,
            num_mel_filters=N_MELS,
            min_frequency=0.0,
            max_frequency=RATE / 2,
            sampling_rate=RATE,
            norm="slaney",
            mel_scale="slaney",
        ).astype(np.float64)  # (201, 40)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2))
    n = 1 + (len(padded) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    power = np.abs(np.fft.rfft(padded[idx] * window, axis=1)) ** 2  # (frames, 201)
    return (power @ _MEL).astype(np.float32)  # (frames, 40)


def partial_slices(n_samples: int) -> list[slice]:
    """Mel-frame slices of the 1.6 s partial utterances that cover ``n_samples`` (resemblyzer's rule)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((RATE / PARTIALS_PER_S) / HOP))
    slices = [
        slice(i, i + PARTIAL_FRAMES) for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    ]
    last = slices[-1]
    coverage = (n_samples - last.start * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(slices) > 1:
        slices = slices[:-1]
    return slices


def resemblyzer_weights() -> Path:
    spec = importlib.util.find_spec("resemblyzer")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise VoxloraError('the default speaker encoder needs resemblyzer: pip install "voxlora[eval]"')
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise VoxloraError(f"{path}: resemblyzer is installed without its encoder weights")
    return path


class GE2EEncoder:
    """resemblyzer's trained GE2E network, rebuilt here (see the module docstring)."""

    name = DEFAULT_ENCODER

    def __init__(self, device: str = "cpu"):
        import torch
        from torch import nn

        state = torch.load(resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self.device = torch.device(device)
        self.lstm.to(self.device).eval()
        self.linear.to(self.device).eval()

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        x = trim_pauses(normalize_volume(_mono16k(audio, sample_rate)))
        slices = partial_slices(len(x))
        need = slices[-1].stop * HOP
        if need >= len(x):
            x = np.pad(x, (0, need - len(x)))
        mel = mel_spectrogram(x)
        mels = torch.from_numpy(np.stack([mel[s] for s in slices])).to(self.device)  # (P, 160, 40)
        with torch.inference_mode():
            _, (hidden, _) = self.lstm(mels)
            partial = torch.relu(self.linear(hidden[-1]))  # (P, 256)
            partial = partial / partial.norm(dim=1, keepdim=True).clamp_min(1e-12)
        mean = partial.mean(dim=0).double().cpu().numpy()
        return _unit(mean)


class XVectorEncoder:
    """A transformers ``AutoModelForAudioXVector`` checkpoint (e.g. WavLM's speaker-verification head)."""

    def __init__(self, name: str, device: str = "cpu"):
        from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

        self.name = str(name)
        try:
            self.features = AutoFeatureExtractor.from_pretrained(self.name)
            self.model = AutoModelForAudioXVector.from_pretrained(self.name).to(device).eval()
        except (OSError, ValueError) as e:
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise VoxloraError(f"{name}: cannot load this speaker encoder ({text})") from None
        self.rate = int(getattr(self.features, "sampling_rate", RATE))

    def embed(self, audio_: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        x = audio.resample(audio.to_mono(audio_), int(sample_rate), self.rate)
        inputs = self.features(x, sampling_rate=self.rate, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        with torch.inference_mode():
            emb = self.model(**inputs).embeddings[0]
        return _unit(emb.double().cpu().numpy())


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def load_speaker_encoder(name: str | None = None, device: str = "cpu") -> SpeakerEncoder:
    """None: resemblyzer's bundled GE2E weights (offline); else a transformers x-vector id or local folder."""
    if name is None or name == DEFAULT_ENCODER:
        return GE2EEncoder(device)
    return XVectorEncoder(name, device)
