"""Real speech for the scorer tests, spoken offline by voices every `make setup` provides.

- `hibari`: hibari-tts's bundled neural voice "heart" (American English, female; the demo's voice).
- `espeak`: eSpeak NG, the formant synthesiser, from the ``espeakng-loader`` wheel (which ships the
  library and its data; no system package needed), voice ``en-us`` (male). Robotic and very unlike
  hibari: the "clearly different voice". pocketsphinx understands it poorly, so the WER tests use
  hibari and espeak serves the speaker-similarity tests.

Each returns ``(samples float32 mono, sample_rate)``; both are deterministic.
"""

import ctypes
import functools
import os

import numpy as np


@functools.cache
def _hibari():
    from hibari import Hibari

    return Hibari(voice="heart")


def hibari(text: str, seed: int = 0) -> tuple[np.ndarray, int]:
    from hibari import SAMPLE_RATE

    return np.asarray(_hibari()(text, seed=seed), dtype=np.float32), SAMPLE_RATE


_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS
_CHARS_UTF8 = 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_parent = os.path.dirname(espeakng_loader.get_data_path())  # the folder holding espeak-ng-data
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, data_parent.encode(), 0)
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self.chunks = []
        self.callback = _CALLBACK(self._collect)  # kept referenced: C holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, n, events):
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def speak(self, text: str, voice: str) -> np.ndarray:
        self.chunks = []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        data = text.encode("utf-8")
        self.lib.espeak_Synth(
            ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1), 0, 0, 0, _CHARS_UTF8, None, None
        )
        return np.concatenate(self.chunks).astype(np.float32) / 32768.0


@functools.cache
def _espeak():
    return _Espeak()


def espeak(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    engine = _espeak()
    return engine.speak(text, voice), engine.rate


def noise(seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> tuple[np.ndarray, int]:
    """White noise at -20 dBFS RMS."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32), sample_rate
