"""Speech recognition for scoring and transcribing: one small interface, two kinds of recogniser.

    rec = load_recognizer()                          # offline default: pocketsphinx, US English
    rec = load_recognizer("openai/whisper-large-v3-turbo", device="cuda")   # or a local folder
    rec.transcribe(samples, 24000)                   # -> Transcript(text="hello there", confidence=0.93)

Audio in is mono float32 at any rate; each recogniser resamples to its own rate (16 kHz for both).

- ``None`` (the default): CMU pocketsphinx with the US-English acoustic model, language model and
  dictionary that ship inside the ``pocketsphinx`` wheel, so it works with no download and no GPU.
  English only, and far less accurate than Whisper (word error rates of 10-30% on clean read
  speech are normal): good for comparing a base model against its adapter on the same texts, not
  for absolute claims. ``confidence`` is the mean posterior probability of the recognised words
  (pocketsphinx's lattice posteriors, fillers and silences left out, each clipped to [0, 1]);
  0 when nothing was recognised.
- Any other name: a transformers Whisper checkpoint (a Hub id or a local folder) through the
  ``automatic-speech-recognition`` pipeline. ``confidence`` is ``exp(-mean token cross-entropy)``
  of the pipeline's own transcript under the model (one teacher-forced pass over the first 30 s):
  the geometric mean of the token probabilities, in (0, 1].

The pocketsphinx and transformers imports happen only when a recogniser is loaded (``voxlora[eval]``
installs pocketsphinx).
"""

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voxlora import audio
from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora.asr")

DEFAULT_RECOGNIZER = "pocketsphinx-en-us"  # what `load_recognizer(None)` gives; its `name`
ASR_RATE = 16000  # both recognisers listen at 16 kHz
WHISPER_WINDOW_S = 30  # Whisper's input window; the confidence pass scores this much


@dataclass
class Transcript:
    text: str
    confidence: float  # 0..1, the recogniser's own score mapped to a probability-like number (see above)


class Recognizer(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript: ...


def _mono16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    x = audio.to_mono(x)
    return np.ascontiguousarray(audio.resample(x, int(sample_rate), ASR_RATE), dtype=np.float32)


def _is_filler(word: str) -> bool:
    """pocketsphinx's non-words: <s>, </s>, <sil>, [NOISE], ++GARBAGE++ and the like."""
    return not word or word[0] in "<[+"


class PocketsphinxRecognizer:
    """pocketsphinx's bundled US-English models (acoustic model, 3-gram LM, CMU dictionary)."""

    name = DEFAULT_RECOGNIZER

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise VoxloraError(
                'the default recogniser needs pocketsphinx: pip install "voxlora[eval]"'
            ) from None
        # Its C logs go to stderr; only errors are worth a line there.
        self._decoder = Decoder(samprate=ASR_RATE, loglevel="ERROR", dither=True, seed=1)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        x = _mono16k(audio, sample_rate)
        if x.size == 0:
            return Transcript("", 0.0)
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)  # the whole clip at once: batch cepstral normalisation
        d.end_utt()
        hyp = d.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        probs = [min(max(float(s.prob), 0.0), 1.0) for s in d.seg() if not _is_filler(s.word)]
        confidence = float(np.mean(probs)) if text and probs else 0.0
        return Transcript(text, confidence)


class WhisperRecognizer:
    """A transformers Whisper checkpoint through the speech-recognition pipeline."""

    def __init__(self, name: str, device: str = "cpu"):
        from transformers import pipeline

        self.name = str(name)
        try:
            self._pipe = pipeline("automatic-speech-recognition", model=self.name, device=device)
        except OSError as e:  # no such folder, not on the Hub, offline
            raise VoxloraError(f"{name}: cannot load this speech recogniser ({_first_line(e)})") from None

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        x = _mono16k(audio, sample_rate)
        if x.size == 0:
            return Transcript("", 0.0)
        out = self._pipe({"raw": x, "sampling_rate": ASR_RATE})
        text = str(out["text"]).strip()
        return Transcript(text, self._confidence(x, text) if text else 0.0)

    def _confidence(self, x: np.ndarray, text: str) -> float:
        """exp(-mean cross-entropy) of ``text``'s tokens given the first 30 s of ``x``."""
        import torch

        pipe = self._pipe
        feats = pipe.feature_extractor(
            x[: WHISPER_WINDOW_S * ASR_RATE], sampling_rate=ASR_RATE, return_tensors="pt"
        ).input_features
        labels = pipe.tokenizer(text, return_tensors="pt").input_ids
        model = pipe.model
        with torch.inference_mode():
            loss = model(
                input_features=feats.to(model.device, model.dtype), labels=labels.to(model.device)
            ).loss
        value = math.exp(-float(loss))
        return value if math.isfinite(value) else 0.0


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_recognizer(name: str | None = None, device: str = "cpu") -> Recognizer:
    """None: the offline default whose model ships inside its pip package; else a transformers Whisper id or local folder (pipeline 'automatic-speech-recognition')."""
    if name is None or name == DEFAULT_RECOGNIZER:
        return PocketsphinxRecognizer()
    return WhisperRecognizer(name, device=device)
