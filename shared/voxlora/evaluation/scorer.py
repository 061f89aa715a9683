"""Score one clip: what an ASR hears against its text, how alike the voice is to the real speaker.

    scorer = Scorer(asr=None, speaker_encoder=None)          # the offline defaults
    scorer.add_reference({"audio": "real/0001.wav", "text": "...", "speaker": 0})
    scorer.score(wave, 24000, "the text", speaker=0)
    # {"wer": 0.1, "cer": 0.04, "speaker_sim": 0.87, "duration": 2.1, "transcript": "...", ...}

Speaker similarity is the mean cosine of the clip's embedding against the embeddings of the
speaker's real recordings (the references), leaving out the clip itself when it is one of them
(``exclude``): so a real recording scored against the others gives the ceiling. With no reference
of that speaker, ``speaker_sim`` is None. The recogniser and encoder load on first use.
"""

import logging

import numpy as np

from voxlora import audio, scoring
from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora.eval")


class Scorer:
    def __init__(self, asr: str | None = None, speaker_encoder: str | None = None, device: str = "cpu"):
        self.asr_name, self.encoder_name, self.device = asr, speaker_encoder, device
        self._asr = self._encoder = None
        self.references: dict[int, list[tuple[str, np.ndarray]]] = {}  # speaker -> [(audio path, embedding)]
        self.reference_durations: dict[str, float] = {}  # normalised text -> the real recording's seconds

    @property
    def asr(self):
        if self._asr is None:
            from voxlora.asr import load_recognizer

            self._asr = _loaded(load_recognizer, self.asr_name, self.device)
        return self._asr

    @property
    def encoder(self):
        if self._encoder is None:
            from voxlora.speaker_embed import load_speaker_encoder

            self._encoder = _loaded(load_speaker_encoder, self.encoder_name, self.device)
        return self._encoder

    def names(self) -> dict:
        return {"asr": self.asr.name, "speaker_encoder": self.encoder.name}

    def add_reference(self, record: dict, where: str = "") -> None:
        """A real recording of ``record["speaker"]`` (default 0): its embedding and its duration."""
        wave, rate = load_audio(record["audio"], where)
        speaker = int(record.get("speaker", 0) or 0)
        self.references.setdefault(speaker, []).append((str(record["audio"]), self.encoder.embed(wave, rate)))
        if record.get("text"):
            self.reference_durations.setdefault(scoring.normalize(record["text"]), len(wave) / rate)

    def score(
        self, wave: np.ndarray, rate: int, text: str, speaker: int = 0, exclude: str | None = None
    ) -> dict:
        transcript = self.asr.transcribe(wave, rate)
        duration = audio.duration(wave, rate)
        refs = [e for path, e in self.references.get(int(speaker), []) if path != exclude]
        sim = scoring.speaker_similarity(self.encoder.embed(wave, rate), refs) if refs else None
        out = {
            "wer": round(scoring.wer(text, transcript.text), 4),
            "cer": round(scoring.cer(text, transcript.text), 4),
            "speaker_sim": None if sim is None else round(sim, 4),
            "duration": duration,
            "transcript": transcript.text,
            "asr_confidence": round(transcript.confidence, 4),
        }
        out.update(
            scoring.length_check(text, duration, self.reference_durations.get(scoring.normalize(text)))
        )
        return out


_LOADED: dict = {}


def _loaded(loader, name, device):
    """Each recogniser or encoder loaded once per process (lora-train samples many times, tests run many)."""
    key = (loader.__name__, name, device)
    if key not in _LOADED:
        _LOADED[key] = loader(name, device)
    return _LOADED[key]


def load_audio(path, where: str = "") -> tuple[np.ndarray, int]:
    """A clip as mono float32; a file that cannot be read is one `VoxloraError` line."""
    from voxlora.rejects import Rejected

    try:
        return audio.load(path)
    except Rejected as e:
        raise VoxloraError(f"{where + ': ' if where else ''}{path}: {e}") from None
