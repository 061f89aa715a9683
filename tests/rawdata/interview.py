"""A synthetic "interview" for the raw-recording tests: hibari-tts sentences with pauses and noise.

Three recordings of one voice (hibari's bundled "heart", the one `make setup` installs), each a few
sentences long, separated by pauses of varied length (0.5-1.6 s), with a steady noise floor 40 dB
under the speech: ``part1.wav``, ``part2.mp3`` and ``part3.m4a`` (both encoded by PyAV, the library
mkmanifest decodes them with). `make_interview` returns where each sentence's speech lies, measured
on the clean synthesis (first and last sample over -40 dB of its peak), for the boundary checks.
"""

import json
from pathlib import Path

import numpy as np

RATE = 24000
PARTS = (
    ("part1.wav", (0, 1, 2, 3)),
    ("part2.mp3", (4, 5, 6, 7)),
    ("part3.m4a", (8, 9, 10, 11)),
)
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
)
PAUSES = (0.5, 1.1, 0.7, 1.6, 0.9, 1.3)  # seconds between sentences, cycled


def _speech_extent(x: np.ndarray) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(x) >= 0.01 * np.abs(x).max())
    return int(loud[0]), int(loud[-1]) + 1


def make_interview(folder) -> dict:
    """Write the three recordings into ``folder``; return {file: [{"text", "start", "end"}]} (seconds)."""
    from hibari import SAMPLE_RATE, Hibari
    from voxlora import audio, decode

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tts = Hibari(voice="heart")
    rng = np.random.default_rng(0)
    truth: dict = {}
    k = 0
    for name, ids in PARTS:
        pieces, spans, t = [np.zeros(int(0.8 * RATE), np.float32)], [], 0.8
        for i in ids:
            x = audio.resample(tts(SENTENCES[i], seed=i), SAMPLE_RATE, RATE)
            a, b = _speech_extent(x)
            x = x[a:b]  # the sentence's speech, its own silences cut: pauses are the ones set here
            spans.append({"text": SENTENCES[i], "start": round(t, 3), "end": round(t + len(x) / RATE, 3)})
            pause = PAUSES[k % len(PAUSES)]
            k += 1
            pieces += [x, np.zeros(int(pause * RATE), np.float32)]
            t += len(x) / RATE + pause
        signal = np.concatenate(pieces)
        signal = 0.5 * signal / np.abs(signal).max()
        signal = signal + rng.normal(0, 0.002, len(signal)).astype(np.float32)  # noise ~40 dB down
        path = folder / name
        if path.suffix == ".wav":
            audio.write_wav(path, signal, RATE)
        else:
            decode.encode(path, signal, RATE)
        truth[str(path.resolve())] = spans
    (folder.parent / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth
