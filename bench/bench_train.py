"""Training: voxlora's `lora-train` next to the transformers CSM recipe (`reference.py`), and next to
the machine's own matrix-multiply rate.

Both trainers see the same model folder, the same clips, the same batch size, the same LoRA
(rank, alpha, and exactly the modules voxlora adapts) and the same depth-decoder fraction, on the
same number of torch threads. Each run is a fresh process (`_worker`): load, warm-up steps, timed
steps; the process's peak resident memory is reset after the warm-up (``/proc/self/clear_refs``) and
read after the last step, so it is the steady-state training peak (weights included). Runs of the
two trainers alternate, and every figure is the median over runs.

voxlora is measured through `recipe.run`, exactly what `lora-train` runs: its step time is the
time between two optimizer steps (batch building included); its codes come from the cache, filled
by the first run (codec work done once is the point of the cache).

Model FLOPs per step (`step_flops`), counted from the config on the real (unpadded) positions::

    linear(n, i, o)     = 2 n i o                       one matmul of n rows through an (i -> o) weight
    backbone layer(n)   = linear(n, H, H + 2 Hkv) + linear(n, H, H) + 3 linear(n, H, I)
                          + 4 n T H                     QK^T and AV (T: the clip's positions)
    backbone            = L * layer(P) + linear(M, H, V)            P positions, M = frames + 1 heads
    depth decoder       = linear(Fr K, H, Hd) + Ld * layer_d(Fr K) + (K - 1) linear(Fr, Hd, V)
    step                = 2 * (backbone + depth decoder) + LoRA
    LoRA                = sum over adapted (i -> o): 3 linear(rows, i + o, r)... see `_lora_flops`

The factor 2: a LoRA step runs the forward (1x) and the backward's input gradients (1x); frozen
weights need no weight gradient (full fine-tuning would be 3x). Embedding lookups and the norms,
softmax and activations are not counted (no multiply-adds worth counting).
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from voxlora.demo_corpus import SENTENCES as DEMO_SENTENCES

SENTENCES = DEMO_SENTENCES[3:11]  # eight Harvard sentences, as the tests use
FRAME_SAMPLES = 1920  # Mimi: 24 kHz / 12.5 Hz
RANK, ALPHA, TARGETS = 8, 16.0, ("q_proj", "v_proj")  # voxlora's default LoRA


# ---------------------------------------------------------------- data and models


def speechlike(seconds: float, sr: int = 24000, seed: int = 0) -> np.ndarray:
    """A gliding harmonic voice at 4 syllables/s (what Mimi sees as speech), peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, np.pi)), 0, None) ** 0.5
    x = voice * envelope + 0.01 * rng.standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_clips(folder: Path, n: int, frames: int) -> Path:
    """``n`` clips of exactly ``frames`` Mimi frames (24 kHz wav) and their manifest."""
    import soundfile as sf

    folder = folder.resolve()
    manifest = folder / f"clips-{n}x{frames}.jsonl"
    if manifest.is_file():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        path = folder / f"clip{i:03d}-{frames}.wav"
        sf.write(path, speechlike(frames * FRAME_SAMPLES / 24000, seed=i), 24000, subtype="PCM_16")
        lines.append(
            json.dumps({"audio": str(path), "text": SENTENCES[i % len(SENTENCES)], "speaker": i % 2})
        )
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def make_model(folder: Path, size: str) -> Path:
    """The small (tiny) or mid-size random CSM, written once."""
    from voxlora.demo_model import write_tiny_csm

    from bench.csm_models import mid_config, write_random_csm

    if not (folder / "config.json").is_file():
        if size == "small":
            write_tiny_csm(folder, seed=0)
        else:
            write_random_csm(folder, mid_config(), seed=0)
    return folder


def adapted_modules(model: Path) -> list[str]:
    """The full names of the modules voxlora's default LoRA adapts (the reference gets the same)."""
    from voxlora import targets
    from voxlora.lora_options import LoraSettings

    return sorted(targets.select(targets.base_shapes(model), LoraSettings(rank=RANK, alpha=ALPHA)).lora)


def flop_inputs(model: Path, manifest: Path) -> tuple:
    """What `step_flops` needs of a model and its clips: (config, each clip's text length, the adapted
    modules, the base's tensor shapes, the adapted modules' weight shapes)."""
    from transformers import AutoConfig, AutoProcessor
    from voxlora import targets
    from voxlora.families.csm.sequences import text_ids

    processor = AutoProcessor.from_pretrained(model)
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line]
    texts = [len(text_ids(processor, r["text"], r["speaker"])) for r in records]
    modules = adapted_modules(model)
    shapes = targets.base_shapes(model)
    return (
        AutoConfig.from_pretrained(model),
        texts,
        modules,
        shapes,
        {m: shapes[m + ".weight"] for m in modules},
    )


# ---------------------------------------------------------------- FLOPs and the machine


def _linear(n, i, o) -> float:
    return 2.0 * n * i * o


def _layer(n, t, cfg) -> float:
    h, i = cfg.hidden_size, cfg.intermediate_size
    hkv = cfg.num_key_value_heads * getattr(cfg, "head_dim", h // cfg.num_attention_heads)
    hq = cfg.num_attention_heads * getattr(cfg, "head_dim", h // cfg.num_attention_heads)
    return _linear(n, h, hq + 2 * hkv) + _linear(n, hq, h) + 3 * _linear(n, h, i) + 4.0 * n * t * hq


def _lora_flops(shapes: dict, rows: dict) -> float:
    """Forward, input gradient and weight gradients of each LoRA pair: 3 x (x A^T, then . B^T)."""
    return sum(3 * _linear(rows[m], i + o, RANK) for m, (o, i) in shapes.items())


def step_flops(config, text_positions: list[int], frames: int, decoder_frames: int, lora=None) -> float:
    """Model FLOPs of one training step over clips with these text lengths (see the module doc)."""
    dd = config.depth_decoder_config
    k, v = config.num_codebooks, config.vocab_size
    total, rows = 0.0, {"backbone": 0, "decoder": 0}
    for n_text in text_positions:
        t = n_text + frames + 1  # positions: text, frames, end frame
        fr = decoder_frames + 1  # chosen frames and the end frame
        backbone = config.num_hidden_layers * _layer(t, t, config) + _linear(
            frames + 1, config.hidden_size, v
        )
        decoder = (
            _linear(fr * k, dd.backbone_hidden_size, dd.hidden_size)
            + dd.num_hidden_layers * _layer(fr * k, k, dd)
            + (k - 1) * _linear(fr, dd.hidden_size, v)
        )
        total += 2 * (backbone + decoder)
        rows["backbone"] += t
        rows["decoder"] += fr * k
    if lora:
        total += _lora_flops(
            lora, {m: rows["decoder" if m.startswith("depth") else "backbone"] for m in lora}
        )
    return total


def matmul_rate(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """This machine's (n x n) @ (n x n) rate in FLOP/s, on torch's current threads: the median."""
    import torch

    a = torch.randn(n, n, dtype=getattr(torch, dtype))
    b = torch.randn(n, n, dtype=getattr(torch, dtype))
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times)


# ---------------------------------------------------------------- one run, in its own process


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _worker(job: dict) -> dict:
    import torch

    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    marks = []

    def tick(step: int) -> None:
        marks.append(time.perf_counter())
        if step == job["warmup"]:
            job["resident_mib"] = _rss_mib("VmRSS")
            _reset_peak()

    total = job["warmup"] + job["steps"]
    if job["side"] in ("voxlora", "voxlora-mlx"):
        import tempfile

        from voxlora.lora_options import LoraSettings
        from voxlora.train.config import TrainConfig
        from voxlora.train.recipe import run

        with tempfile.TemporaryDirectory() as out:
            config = TrainConfig(
                model=job["model"], manifest=job["manifest"], out=out, max_steps=total,
                batch_size=job["batch_size"], decoder_frame_fraction=job["fraction"],
                log_every=10**9, warmup_steps=0, cache_dir=job["cache"],
                backend="mlx" if job["side"] == "voxlora-mlx" else "torch",
            )  # fmt: skip
            settings = LoraSettings(rank=RANK, alpha=ALPHA, targets=TARGETS)
            peak = {}
            for _ in run(
                config, settings, on_step=lambda s: (tick(s.step), peak.update(v=_rss_mib("VmHWM")))
            ):
                pass
        peak = peak["v"]
    else:
        import soundfile as sf

        from bench.reference import make_reference, reference_step

        model, processor, optimizer = make_reference(job["model"], job["modules"], RANK, ALPHA)
        records = [json.loads(line) for line in Path(job["manifest"]).read_text().splitlines() if line]
        clips = [(r["text"], sf.read(r["audio"], dtype="float32")[0], r["speaker"]) for r in records]
        b = job["batch_size"]
        for step in range(1, total + 1):
            start = (step - 1) * b % len(clips)
            reference_step(model, processor, optimizer, (clips * 2)[start : start + b], job["fraction"])
            tick(step)
        peak = _rss_mib("VmHWM")
    times = np.diff(marks[job["warmup"] - 1 :]).tolist()
    return {"step_s": times, "peak_mib": peak, "resident_mib": job["resident_mib"]}


def run_worker(job: dict, module: str = "bench.bench_train") -> dict:
    """Run ``python -m MODULE --worker JOB`` in a fresh process (its own peak memory); its last line."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--worker", json.dumps(job)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{job['side']} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the benchmark

SIZES = {
    # size: (clips, frames per clip, batch size, warm-up steps, timed steps, runs per side)
    "small": (16, 40, 4, 3, 10, 3),
    "mid": (8, 40, 4, 1, 3, 2),
}


# MLX beside torch (issue 8) on the small config: the same model, clips and settings through
# `lora-train --backend mlx`; on the mid config it would add minutes for the same comparison.
MLX_SIZES = ("small",)


def _has_mlx() -> bool:
    import importlib.util

    return bool(importlib.util.find_spec("mlx") and importlib.util.find_spec("mlx_audio"))


def bench_train(workdir, sizes=("small", "mid"), fractions=(1 / 16, 1.0), threads: int | None = None) -> dict:
    """{"rows": per-setting figures for both trainers, "machine": matmul rate} (see `rows_for_table`)."""
    import torch
    from voxlora.families.csm.sequences import decoder_frames

    workdir = Path(workdir)
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    out = {"threads": threads, "rows": []}
    for size in sizes:
        n, frames, batch, warmup, steps, runs = SIZES[size]
        model = make_model(workdir / f"csm-{size}", size)
        manifest = make_clips(workdir / "train-clips", n, frames)
        cache = str(workdir / f"codes-{size}")
        config, texts, modules, shapes, lora = flop_inputs(model, manifest)
        for fraction in fractions:
            job = dict(
                model=str(model), manifest=str(manifest), cache=cache, batch_size=batch, fraction=fraction,
                warmup=warmup, steps=steps, threads=threads, modules=modules,
            )  # fmt: skip
            sides = ["voxlora", "reference"] + (["voxlora-mlx"] if size in MLX_SIZES and _has_mlx() else [])
            results = {side: [] for side in sides}
            rates = []
            for r in range(runs):  # interleaved, the order rotating
                order = sides[r % len(sides) :] + sides[: r % len(sides)]
                for side in order:
                    results[side].append(run_worker({**job, "side": side}))
                rates.append(matmul_rate())
            mean_text = [sum(texts) / len(texts)] * batch
            flops = step_flops(config, mean_text, frames, decoder_frames(frames, fraction), lora)
            for side, runs_ in results.items():
                step_s = statistics.median(t for run in runs_ for t in run["step_s"])
                out["rows"].append(
                    {
                        "size": size,
                        "params_M": sum(
                            int(np.prod(s)) for k, s in shapes.items() if not k.startswith("codec_model.")
                        )
                        / 1e6,
                        "trainer": side,
                        "fraction": fraction,
                        "batch": batch,
                        "step_s": step_s,
                        "audio_s_per_s": batch * frames / 12.5 / step_s,
                        "peak_MiB": statistics.median(run["peak_mib"] for run in runs_),
                        "resident_MiB": statistics.median(run["resident_mib"] for run in runs_),
                        "GFLOP_per_step": flops / 1e9,
                        "GFLOP_per_s": flops / step_s / 1e9,
                        "matmul_GFLOP_per_s": statistics.median(rates) / 1e9,
                        "utilisation": flops / step_s / statistics.median(rates),
                    }
                )
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:  # python -m bench.bench_train [small|mid ...]: a one-off run, the detail table on stdout
        from bench.table import markdown

        sizes = tuple(sys.argv[1:]) or ("small", "mid")
        print(markdown(bench_train(Path(__file__).parent / "work", sizes)["rows"]))
