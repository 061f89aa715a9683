"""lora-train's defaults chosen from the data: how long, how much warm-up, how much depth decoder.

A corpus of hours and a voice memo of five minutes need different runs. When the user did not set
them (`TrainConfig` leaves them None and `config.resolve` lists them in ``config.auto``), three
settings are chosen once the clips are known, logged on stderr and kept in the resolved config:

* ``epochs``: ``clamp(ceil(CLIP_VISITS / clips), MIN_EPOCHS, MAX_EPOCHS)`` passes, so every set
  trains on about 800 clip-visits: 20 clips -> 40 passes, 400 clips -> 5 (the old fixed default);
* ``warmup_steps``: ``warmup_fraction`` (5%) of the run's steps, at least 1, never the whole run
  (the old fixed 10 steps were the whole run of an 8-clip set at batch 4);
* ``decoder_frame_fraction``: all frames while an epoch holds at most ``DECODER_FRAMES`` audio
  frames (10 minutes at 12.5 frames/s), else ``DECODER_FRAMES / frames`` (the depth decoder still
  sees about 10 minutes of frames per epoch), but never below the amortised 1/16 of CSM's recipe.

    config, notes = choose(config, clips=20, frames=2400, steps_for=lambda c: 5 * c.epochs)
    # notes: ["epochs 40 (800 clip-visits / 20 clips, between 5 and 50)", ...]
"""

import dataclasses
import math
from collections.abc import Callable

CLIP_VISITS = 800  # target clip-visits of a run: passes = CLIP_VISITS / clips
MIN_EPOCHS, MAX_EPOCHS = 5, 50
DECODER_FRAMES = 7500  # frames per epoch the depth decoder learns on, up to all of them (10 min of audio)
MIN_DECODER_FRACTION = 1 / 16  # CSM's amortised share (transformers' depth_decoder_labels_ratio)
STATIC = {"epochs": 5, "warmup_steps": 10, "decoder_frame_fraction": 1 / 16}  # before the data is known


def epochs_for(clips: int) -> int:
    """Passes over ``clips`` clips.

    >>> [epochs_for(n) for n in (8, 20, 100, 1000)]
    [50, 40, 8, 5]
    """
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(CLIP_VISITS / max(1, clips))))


def decoder_fraction_for(frames: int) -> float:
    """The depth decoder's share of an epoch of ``frames`` audio frames.

    >>> [round(decoder_fraction_for(n), 4) for n in (2400, 7500, 30000, 10**6)]
    [1.0, 1.0, 0.25, 0.0625]
    """
    if frames <= DECODER_FRAMES:
        return 1.0
    return max(MIN_DECODER_FRACTION, DECODER_FRAMES / frames)


def warmup_for(steps: int, fraction: float) -> int:
    """Warm-up steps of a ``steps``-step run.

    >>> [warmup_for(n, 0.05) for n in (1, 2, 10, 100, 2000)]
    [0, 1, 1, 5, 100]
    """
    if steps <= 1:
        return 0
    return min(steps - 1, max(1, round(fraction * steps)))


def choose(config, clips: int, frames: int, steps_for: Callable) -> tuple[object, list[str]]:
    """Fill the fields named in ``config.auto`` from the data; (new config, one note per choice).

    ``steps_for(config)`` is the run's optimizer steps under ``config`` (the loop's `total_steps`).
    """
    c = dataclasses.replace(config)
    notes = []
    auto = set(c.auto)
    if "epochs" in auto and not c.max_steps:
        c.epochs = epochs_for(clips)
        notes.append(
            f"epochs {c.epochs} (about {CLIP_VISITS} clip-visits over {clips} clips, "
            f"between {MIN_EPOCHS} and {MAX_EPOCHS}): {steps_for(c)} steps"
        )
    if "decoder_frame_fraction" in auto:
        c.decoder_frame_fraction = decoder_fraction_for(frames)
        rule = (
            f"all frames: {frames} <= {DECODER_FRAMES} per epoch"
            if c.decoder_frame_fraction == 1.0
            else f"{DECODER_FRAMES} of {frames} frames per epoch, at least 1/16"
        )
        notes.append(f"decoder_frame_fraction {c.decoder_frame_fraction:.4g} ({rule})")
    if "warmup_steps" in auto:
        steps = steps_for(c)
        c.warmup_steps = warmup_for(steps, c.warmup_fraction)
        notes.append(f"warmup_steps {c.warmup_steps} ({c.warmup_fraction:g} of {steps} steps)")
    return c, notes


def as_checkpoint(config, theirs: dict):
    """A resumed run takes the data-chosen values of the run that wrote the checkpoint."""
    c = dataclasses.replace(config)
    for name in c.auto:
        if name in theirs and theirs[name] is not None:
            setattr(c, name, theirs[name])
    c.auto = []  # settled: `choose` leaves them as they are
    return c
