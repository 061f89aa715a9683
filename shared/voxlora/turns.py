"""A conversation turn, as synth hands it to a family's prompt builder: who says what, heard or not."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxlora import audio as vaudio
from voxlora.errors import VoxloraError
from voxlora.rejects import Rejected


@dataclass
class Turn:
    """One turn of the conversation: a speaker says ``text``; ``audio`` (mono, model rate) if heard."""

    text: str
    speaker: int = 0
    audio: np.ndarray | None = None


def read_context_audio(path, sample_rate: int) -> np.ndarray:
    """A reference clip as mono float32 at ``sample_rate`` (the model's), or a one-line error."""
    if not Path(path).is_file():
        raise VoxloraError(f"{path}: context clip: no such file")
    try:
        x, sr = vaudio.load(Path(path))
        vaudio.check(x)
    except Rejected as e:
        raise VoxloraError(f"{path}: context clip: {e}") from None
    return vaudio.resample(x, sr, sample_rate)
