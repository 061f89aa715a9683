"""Audio in and out for the data tools: read, check, resample, write.

Everything is mono float32 in [-1, 1] inside voxlora. `load` reads any file libsndfile reads (WAV,
FLAC, OGG/Opus, MP3 with libsndfile >= 1.1) from a path, bytes or a file object, and what it cannot
(M4A/AAC) through PyAV's bundled FFmpeg (`voxlora.decode`), mixes it to mono,
and turns every way a file can be bad into a `Rejected` with a plain reason:

    missing-file  no such file
    not-a-file    a folder where the file should be
    unreadable    not audio, or a format libsndfile cannot open
    corrupt       opened, but decoding failed partway (e.g. FLAC "lost sync")
    truncated     the header promises more samples than the file holds
    empty         no samples at all
    nan           NaN or infinite samples (float WAVs can hold them)
    silent        every sample below -80 dBFS (`check`)

`write_wav` writes 16-bit PCM WAV atomically, the format every later tool reads.
"""

import io
import os
import re

import numpy as np
import soundfile as sf

from voxlora import decode
from voxlora.atomic import atomic_file
from voxlora.rejects import Rejected

SILENT_PEAK = 1e-4  # -80 dBFS: a clip whose loudest sample is quieter than this is "silent"
_WAV_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _open(source):
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    return sf.SoundFile(source)


def load(source) -> tuple[np.ndarray, int]:
    """Read ``source`` (path, bytes or file object) -> (samples (n,) float32 mono, sample rate).

    Raises `Rejected` (missing-file, not-a-file, unreadable, corrupt, truncated, empty, nan); the
    message has no path in it, the caller adds where the clip came from with ``error.at(where)``.
    """
    if isinstance(source, str | os.PathLike):
        if not os.path.exists(source):
            raise Rejected("missing-file", "file not found")
        if os.path.isdir(source):
            raise Rejected("not-a-file", "is a folder, not an audio file")
    try:
        f = _open(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        if decode.available():  # M4A/AAC and what this libsndfile lacks: PyAV's bundled FFmpeg
            return _load_with_pyav(source, e)
        raise Rejected("unreadable", f"unreadable audio ({_reason(e)})") from None
    with f:
        declared = f.frames
        # libsndfile clamps a short WAV to what is there and notes it in the header dump.
        m = _WAV_DATA.search(f.extra_info or "")
        if m and int(m.group(2)) < int(m.group(1)):
            raise Rejected(
                "truncated",
                f"truncated (the header promises {int(m.group(1))} bytes of samples, the file holds {m.group(2)})",
            )
        try:
            x = f.read(dtype="float32", always_2d=True)  # (n, channels)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise Rejected("corrupt", f"corrupt audio, decoding failed ({_reason(e)})") from None
        sr = f.samplerate
    if len(x) < declared:
        raise Rejected(
            "truncated", f"truncated (the header promises {declared} samples, decoding gave {len(x)})"
        )
    if len(x) == 0:
        raise Rejected("empty", "empty (no samples)")
    if not np.isfinite(x).all():
        raise Rejected("nan", "NaN or infinite samples")
    return to_mono(x), sr


def _load_with_pyav(source, sf_error: Exception) -> tuple[np.ndarray, int]:
    """`load`'s second decoder; a file neither library opens keeps libsndfile's reason."""
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    elif hasattr(source, "seek"):
        source.seek(0)
    try:
        x, sr = decode.decode(source)
    except Rejected as e:
        if e.kind == "unreadable":
            raise Rejected("unreadable", f"unreadable audio ({_reason(sf_error)})") from None
        raise
    if not np.isfinite(x).all():
        raise Rejected("nan", "NaN or infinite samples")
    return x, sr


def _reason(e: Exception) -> str:
    """libsndfile's own words without the "Error opening <path>:" prefix: "Format not recognised"."""
    text = str(e).strip()
    if text.startswith("Error opening") and ": " in text:
        text = text.split(": ", 1)[1]
    return text.rstrip(".") or type(e).__name__


def to_mono(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channels averaged."""
    x = np.asarray(x, dtype=np.float32)
    return x if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def check(x: np.ndarray) -> None:
    """Raise `Rejected` for audio a model must not train on: empty, NaN/inf, silent."""
    if x.size == 0:
        raise Rejected("empty", "empty (no samples)")
    if not np.isfinite(x).all():
        raise Rejected("nan", "NaN or infinite samples")
    if float(np.abs(x).max()) < SILENT_PEAK:
        raise Rejected("silent", "silent (every sample below -80 dBFS)")


def resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Resample mono ``x`` from ``sr`` to ``target`` Hz (audresample, high quality); same rate: unchanged."""
    if sr == target:
        return x
    import audresample

    return audresample.resample(np.ascontiguousarray(x, dtype=np.float32), sr, target)[0]


def duration(x: np.ndarray, sr: int) -> float:
    """Seconds, rounded to the millisecond (what manifests store)."""
    return round(len(x) / sr, 3)


def write_wav(path, x: np.ndarray, sr: int) -> None:
    """Write mono 16-bit PCM WAV atomically (clipped to [-1, 1]).

    Made in memory, then written in one go: libsndfile writing to a Python file that fails (a full
    disk) prints a traceback per callback and carries on, where one write raises once.
    """
    data = wav_bytes(x, sr)
    with atomic_file(path, "wb") as f:
        f.write(data)


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    """Mono 16-bit PCM WAV in memory (for datasets that embed audio bytes)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()
