"""Voice activity: where a recording has speech, from Silero VAD's ONNX model (shipped in its wheel).

``pip install silero-vad`` brings the weights inside the package (``silero_vad/data/silero_vad.onnx``,
about 2 MB), so nothing is downloaded. The ONNX model runs through onnxruntime on numpy arrays: no
TorchScript archive is loaded (no unpickling), and ``silero_vad`` itself is never imported (its
``__init__`` sets torch's thread count to 1 for the whole process).

The model reads 16 kHz audio in windows of 512 samples (32 ms), each with the 64 samples before it,
and carries a recurrent state from one window to the next; it gives one speech probability per window.

    probs = speech_probs(x16k)                  # (n_windows,) in [0, 1]
    regions = speech_regions(probs)             # [(0.42, 2.91), (3.60, 6.02), ...] seconds
"""

import importlib.util
from pathlib import Path

import numpy as np

from voxlora.errors import VoxloraError

RATE = 16000  # the model's sample rate
WINDOW = 512  # samples per probability (32 ms)
CONTEXT = 64  # samples of the window before, fed with each window
WINDOW_S = WINDOW / RATE


def model_path() -> Path:
    """The ONNX file inside the installed silero-vad package (found without importing it)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VoxloraError(
            '--segment needs silero-vad: pip install "voxlora[data]" (or: pip install silero-vad)'
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise VoxloraError(f"{path}: silero-vad's ONNX model is missing; reinstall silero-vad")
    return path


_SESSION = None


def _session():
    global _SESSION
    if _SESSION is None:
        try:
            import onnxruntime
        except ImportError:
            raise VoxloraError('--segment needs onnxruntime: pip install "voxlora[data]"') from None
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = opts.intra_op_num_threads = 1
        _SESSION = onnxruntime.InferenceSession(
            str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    return _SESSION


def speech_probs(x: np.ndarray) -> np.ndarray:
    """One speech probability per 32 ms window of ``x`` (mono float32 at 16 kHz), in order."""
    session = _session()
    x = np.asarray(x, dtype=np.float32)
    n = -(-len(x) // WINDOW)
    padded = np.zeros(CONTEXT + n * WINDOW, dtype=np.float32)
    padded[CONTEXT : CONTEXT + len(x)] = x
    state = np.zeros((2, 1, 128), dtype=np.float32)
    sr = np.array(RATE, dtype=np.int64)
    probs = np.empty(n, dtype=np.float32)
    for i in range(n):
        chunk = padded[i * WINDOW : i * WINDOW + CONTEXT + WINDOW][None, :]  # (1, 576)
        out, state = session.run(None, {"input": chunk, "state": state, "sr": sr})
        probs[i] = out[0, 0]
    return probs


def speech_regions(
    probs: np.ndarray,
    threshold: float = 0.5,
    min_silence: float = 0.1,
    min_speech: float = 0.1,
) -> list[tuple[float, float]]:
    """Speech as (start s, end s) spans: hysteresis on ``probs`` (in at ``threshold``, out below
    ``threshold - 0.15``), silences shorter than ``min_silence`` s bridged, blips under ``min_speech`` s dropped.

    >>> speech_regions(np.array([0, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0]), min_speech=0)
    [(0.032, 0.096), (0.224, 0.256)]
    """
    low = threshold - 0.15
    spans, start, speaking = [], 0, False
    for i, p in enumerate(probs):
        if not speaking and p >= threshold:
            speaking, start = True, i
        elif speaking and p < low:
            speaking = False
            spans.append([start, i])
    if speaking:
        spans.append([start, len(probs)])
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and (s - merged[-1][1]) * WINDOW_S < min_silence:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [
        (round(s * WINDOW_S, 3), round(e * WINDOW_S, 3))
        for s, e in merged
        if (e - s) * WINDOW_S >= min_speech
    ]
