"""mkmanifest throughput: audio-seconds validated and resampled (16 kHz -> 24 kHz) per wall-second,
with one worker and with every core, on a few hundred clips. Target: >= 300x real time on all cores.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

BIN = Path(sys.executable).parent


def make_clips(folder: Path, n: int = 300, seconds: float = 3.0, sr: int = 16000) -> Path:
    """``n`` speech-like clips (noise shaped by a slow envelope) and a JSONL manifest of them."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "clips.jsonl"
    if manifest.is_file():
        return manifest
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    with open(manifest, "w") as out:
        for i in range(n):
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (2 + i % 5) * t)
            wave = (0.2 * envelope * rng.standard_normal(t.size)).astype(np.float32)
            path = folder / f"clip{i:04d}.wav"
            sf.write(path, wave, sr, subtype="PCM_16")
            out.write(json.dumps({"audio": str(path), "text": f"clip number {i}"}) + "\n")
    return manifest


def _run(manifest: Path, out_dir: Path, jobs: int) -> float:
    start = time.perf_counter()
    with open(manifest) as stdin:
        subprocess.run(
            [
                str(BIN / "mkmanifest"),
                "-",
                "--sample-rate",
                "24000",
                "--out-dir",
                str(out_dir),
                "-j",
                str(jobs),
                "-q",
            ],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    return time.perf_counter() - start


def bench_mkmanifest(workdir, n: int = 300, seconds: float = 3.0, repeats: int = 3) -> list[dict]:
    workdir = Path(workdir)
    manifest = make_clips(workdir / "mkmanifest-clips", n=n, seconds=seconds)
    cores = os.cpu_count() or 1
    settings = [1, cores] if cores > 1 else [1]
    times = {jobs: [] for jobs in settings}
    for _ in range(repeats + 1):  # interleaved; the first round is the warm-up
        for jobs in settings:
            times[jobs].append(_run(manifest, workdir / f"mkmanifest-out-j{jobs}", jobs))
    audio_s = n * seconds
    rows = []
    for jobs in settings:
        wall = statistics.median(times[jobs][1:])
        rows.append(
            {
                "what": f"mkmanifest --jobs {jobs}",
                "clips": n,
                "audio_s": audio_s,
                "wall_s": wall,
                "x_real_time": audio_s / wall,
                "target": ">= 300x (all cores)" if jobs == cores else "",
            }
        )
    return rows


if __name__ == "__main__":
    from bench.table import markdown

    print(markdown(bench_mkmanifest(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "work")))
