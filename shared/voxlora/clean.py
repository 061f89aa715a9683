"""Cleaning a clip before it is written: silence trimmed, loudness normalised, faults measured.

* `trim`: leading and trailing silence cut to ``margin`` seconds (0.15). Silence is every 20 ms
  frame quieter than both 40 dB under the loudest frame and 10 dB over the noise floor (the 10th
  percentile of frame levels), so a steady hiss counts as silence too. Noise before or after the
  speech is what users hear as "a click at the start" of generated clips.
* `normalize`: loudness brought to ``target`` LUFS (ITU-R BS.1770, pyloudnorm; -23 by default, EBU
  R128), with the gain lowered when it would push a peak past -1 dBFS.
* `clipped_share`: the share of samples at full scale (a clipped recording);
  `snr_db`: loudest frames over the noise floor, in dB. Both are reported, never "fixed".

    y, report = clean(x, 24000, CleanConfig(loudness=-23.0))
    # report: {"snr_db": 31.2, "clipped": 0.0, "gain_db": 4.1}
"""

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
PEAK_LIMIT = 10 ** (-1 / 20)  # -1 dBFS
CLIPPED_AT = 0.999  # |sample| at or over this is "at full scale"
LOW_SNR_DB = 15.0  # reported below this
CLIPPED_SHARE = 0.001  # reported over this (0.1% of samples)


@dataclass(frozen=True)
class CleanConfig:
    trim: bool = True  # cut leading/trailing silence to `margin`
    margin: float = 0.15  # seconds of silence kept at each end
    loudness: float | None = -23.0  # LUFS target; None: levels kept as recorded


def frame_levels(x: np.ndarray, sr: int) -> np.ndarray:
    """RMS level of each 20 ms frame, in dBFS (-120 for digital silence)."""
    n = max(1, int(sr * FRAME_S))
    frames = len(x) // n
    if frames == 0:
        return np.array([-120.0])
    rms = np.sqrt(np.mean(np.square(x[: frames * n].reshape(frames, n), dtype=np.float64), axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def trim(x: np.ndarray, sr: int, margin: float = 0.15) -> np.ndarray:
    """``x`` without its leading and trailing silence, ``margin`` seconds of it kept at each end.

    >>> sr = 1000; x = np.zeros(3000, np.float32); x[1000:2000] = 0.5
    >>> len(trim(x, sr, margin=0.1))
    1200
    """
    levels = frame_levels(x, sr)
    floor = float(np.percentile(levels, 10))
    loud = levels >= max(float(levels.max()) - 40.0, floor + 10.0)
    if not loud.any() or loud.all():
        return x
    n = max(1, int(sr * FRAME_S))
    idx = np.flatnonzero(loud)
    keep = int(round(margin * sr))
    start = max(0, idx[0] * n - keep)
    end = min(len(x), (idx[-1] + 1) * n + keep)
    return x[start:end]


def loudness(x: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (-inf for silence; clips under 0.4 s are measured padded)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sr)
    y = np.asarray(x, dtype=np.float64)
    if len(y) < int(0.4 * sr) + 1:  # the meter's 400 ms block
        y = np.pad(y, (0, int(0.4 * sr) + 1 - len(y)))
    return float(meter.integrated_loudness(y))


def normalize(x: np.ndarray, sr: int, target: float = -23.0) -> tuple[np.ndarray, float]:
    """``x`` at ``target`` LUFS, peaks kept under -1 dBFS: (audio, the gain applied in dB)."""
    level = loudness(x, sr)
    if not np.isfinite(level):
        return x, 0.0
    gain = 10 ** ((target - level) / 20)
    peak = float(np.abs(x).max())
    if peak * gain > PEAK_LIMIT:
        gain = PEAK_LIMIT / peak
    return (x * gain).astype(np.float32), round(20 * float(np.log10(gain)), 2)


def clipped_share(x: np.ndarray) -> float:
    """Share of samples at full scale (|x| >= 0.999)."""
    return float(np.mean(np.abs(x) >= CLIPPED_AT)) if len(x) else 0.0


def snr_db(x: np.ndarray, sr: int) -> float:
    """Speech over noise: the 90th percentile of frame levels minus the 10th, in dB."""
    levels = frame_levels(x, sr)
    return round(float(np.percentile(levels, 90) - np.percentile(levels, 10)), 1)


def clean(x: np.ndarray, sr: int, config: CleanConfig = CleanConfig()) -> tuple[np.ndarray, dict]:
    """Trim and normalise ``x`` as ``config`` says; measure it first: (audio, report).

    The report has ``snr_db`` and ``clipped`` (share of samples), measured on the clip as it came,
    and ``gain_db`` when the loudness was normalised.
    """
    report = {"snr_db": snr_db(x, sr), "clipped": round(clipped_share(x), 5)}
    if config.trim:
        x = trim(x, sr, config.margin)
    if config.loudness is not None:
        x, report["gain_db"] = normalize(x, sr, config.loudness)
    return x, report


def problems(report: dict) -> list[str]:
    """What a report says is wrong, in words: ``["clipped (1.2% of samples at full scale)"]``."""
    out = []
    if report.get("clipped", 0) > CLIPPED_SHARE:
        out.append(f"clipped ({100 * report['clipped']:.1f}% of samples at full scale)")
    if report.get("snr_db", 100) < LOW_SNR_DB:
        out.append(f"low SNR ({report['snr_db']:.0f} dB < {LOW_SNR_DB:.0f})")
    return out
