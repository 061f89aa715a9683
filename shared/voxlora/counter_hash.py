"""Counter-based pseudo-random numbers: the same inputs give the same numbers, with no generator
state to save (splitmix64's finaliser). Used for data order (`voxlora.train.batches`) and for
choices per clip and position that must not depend on how clips are batched.

    >>> epoch_seed(0, 0) == epoch_seed(0, 0) != epoch_seed(0, 1)
    True
"""

import numpy as np


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wraps on overflow, as intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for one epoch's data order."""
    return int(mix(mix(np.array([seed], dtype=np.uint64)) ^ np.uint64(epoch))[0] >> np.uint64(1))


def frame_scores(seed: int, epoch: int, clips: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random uint64 per (clip, position): (B,) x (T,) -> (B, T)."""
    base = mix(mix(np.array([seed], dtype=np.uint64)) ^ np.uint64(epoch))
    per_clip = mix(base ^ clips.astype(np.uint64))  # (B,)
    return mix(per_clip[:, None] ^ positions.astype(np.uint64)[None, :])  # (B, T)
