"""The GPU benchmark: voxlora's LoRA step against the transformers+peft recipe on a random full-size
CSM-1B in bf16, synth's frames per second, and a profiler summary of one step and one frame.

    python -m bench.gpu            (make bench-gpu) one CUDA GPU, under 8 minutes, nothing downloaded
    python -m bench.gpu --smoke    the tiny model, a few steps: runs anywhere (CPU too) in under a minute

Writes ``bench/results/<date>-<gpu>.md`` (``-smoke`` appended for a smoke run) and prints the table.

Training: both sides get the same model folder, clips, batch, LoRA (rank 8, alpha 16, exactly the
modules voxlora adapts) and depth-decoder fraction (amortisation 1 and 1/16), each side in its own
process (`_worker`): load, warm-up steps, timed steps (CUDA synchronised at each step's end), peak
GPU memory (``torch.cuda.max_memory_allocated`` after the warm-up; on the CPU, the peak RSS).
voxlora runs `train.recipe.run`, exactly what `lora-train --dtype bf16` runs; the reference is
`bench.reference` with the base in bf16 (peft's LoRA weights follow the base's dtype there).

Model FLOP utilisation (MFU) = model FLOPs per step / step time / the GPU's peak dense bf16 rate.
Model FLOPs per step (`bench.bench_train.step_flops`): 2 FLOPs per parameter per token for the
forward, x2 more for the backward of a frozen base into LoRA (input gradients only, no weight
gradients), plus attention (4 n T H per layer forward), plus the LoRA pairs (3 matmul pairs each).
The peak rate is the datasheet's for known GPUs (H100/H200 SXM 989 TFLOP/s, A100 312, L40S 362,
L4 121, RTX 4090 165, A10 125), else the measured bf16 8192^3 matmul rate (the row says which).

synth: frames per second of `synth --dtype bf16` (a 12.5 frames/s clip is real time), sampling as
synth does, single stream and `synth --batch-size N` (``synth_batch`` prompts generated together
through `voxlora.synth.backend.generate_batch`, as that option does; frames of all rows per second).
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

from bench.bench_train import ALPHA, RANK, TARGETS, flop_inputs, make_clips, run_worker, step_flops
from bench.table import RESULTS, markdown

WORK = Path(__file__).parent / "work"
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "4090": 165e12,
             "A10": 125e12}  # fmt: skip
FULL = {
    "clips": 8,
    "frames": 125,
    "batch": 8,
    "warmup": 3,
    "steps": 10,
    "synth_frames": 64,
    "synth_batch": 32,
}
SMOKE = {"clips": 4, "frames": 20, "batch": 2, "warmup": 1, "steps": 2, "synth_frames": 8, "synth_batch": 3}


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def peak_rate(dtype) -> tuple[float, str]:
    """(peak FLOP/s, where the figure comes from) of this device in ``dtype``."""
    import torch

    name = device_name()
    for key, rate in PEAK_BF16.items():
        if key in name and torch.cuda.is_available():
            return rate, f"{name} datasheet, dense bf16"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = 8192 if device == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(4):
        _sync()
        start = time.perf_counter()
        a @ a
        _sync()
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times[1:]), f"measured {n}^3 matmul ({name})"


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_memory_mib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    from bench.bench_train import _rss_mib

    return _rss_mib("VmHWM")


def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    else:
        from bench.bench_train import _reset_peak

        _reset_peak()


def _profile_summary(prof) -> dict:
    """Top kernels (or ops, on the CPU) by time, and the share of host time in launches and syncs."""
    import torch

    events = prof.key_averages()
    cuda = torch.cuda.is_available()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    table = events.table(sort_by=key, row_limit=12, max_name_column_width=60)
    host_total = sum(e.self_cpu_time_total for e in events) or 1
    launches = sum(e.self_cpu_time_total for e in events if "LaunchKernel" in e.key or "cuLaunch" in e.key)
    syncing = [e for e in events if _is_sync(e.key)]
    syncs = sum(e.self_cpu_time_total for e in syncing)
    return {"table": table, "launch_share": launches / host_total, "sync_share": syncs / host_total,
            "host_syncs": sum(e.count for e in syncing if e.key in WAITS) if cuda else "n/a (no GPU)"}  # fmt: skip


# CUDA calls in which the host waits for the GPU's stream: what ``.item()``, ``float()``, ``bool()``,
# ``.cpu()`` and sizes only the data knows (``nonzero``) cost. (cudaDeviceSynchronize is left out:
# the benchmark's own, to time a step.)
WAITS = ("cudaStreamSynchronize", "cudaMemcpy", "cudaEventSynchronize")


def _is_sync(key: str) -> bool:
    """A profiler event where the host waits for the device (its time goes into ``sync_share``)."""
    return "Synchronize" in key or key in ("cudaMemcpy", "aten::item", "aten::_local_scalar_dense")


def _profiler():
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    return profile(activities=activities)


# ---------------------------------------------------------------- one training run, its own process


def _worker(job: dict) -> dict:
    import torch

    torch.manual_seed(0)
    marks, prof, summary = [], None, {}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    total = job["warmup"] + job["steps"]

    def tick(step: int) -> None:
        nonlocal prof
        _sync()
        marks.append(time.perf_counter())
        if step == job["warmup"]:
            _reset_peak_memory()
        if job["profile"] and step == total:  # profile exactly one step after the timed ones
            prof = _profiler()
            prof.__enter__()
        elif prof is not None and step == total + 1:
            prof.__exit__(None, None, None)
            summary.update(_profile_summary(prof))
            prof = None

    if job["side"] == "voxlora":
        import tempfile

        from voxlora.lora_options import LoraSettings
        from voxlora.train.config import TrainConfig
        from voxlora.train.recipe import run

        with tempfile.TemporaryDirectory() as out:
            # the profiled step is not the run's last (the last logs: its reads of the device are allowed)
            config = TrainConfig(
                model=job["model"], manifest=job["manifest"], out=out, max_steps=total + 2 * int(job["profile"]),
                batch_size=job["batch"], decoder_frame_fraction=job["fraction"], log_every=10**9, warmup_steps=0,
                cache_dir=job["cache"], backend="torch", device=device, dtype=job["dtype"],
                compile=job.get("compile", False),
            )  # fmt: skip
            from voxlora.backends.torch import compile as compile_mod

            settings = LoraSettings(rank=RANK, alpha=ALPHA, targets=TARGETS)
            peak, backend = {}, compile_mod.BACKEND
            compile_mod.BACKEND = job.get("compile_backend") or backend
            try:
                for _ in run(
                    config, settings, on_step=lambda s: (tick(s.step), peak.update(v=_peak_memory_mib()))
                ):
                    pass
            finally:
                compile_mod.BACKEND = backend
        peak = peak["v"]
    else:
        import soundfile as sf

        from bench.reference import make_reference

        model, processor, optimizer = make_reference(job["model"], job["modules"], RANK, ALPHA)
        if job["dtype"] == "bf16":
            model.to(torch.bfloat16)
            model.base_model.model.codec_model.float()
        model.to(device)
        records = [json.loads(line) for line in Path(job["manifest"]).read_text().splitlines() if line]
        clips = [(r["text"], sf.read(r["audio"], dtype="float32")[0], r["speaker"]) for r in records]
        b = job["batch"]
        for step in range(1, total + 1 + int(job["profile"])):
            start = (step - 1) * b % len(clips)
            _reference_step(
                model, processor, optimizer, (clips * 2)[start : start + b], job["fraction"], device
            )
            tick(step)
        peak = _peak_memory_mib()
    times = [
        b - a for a, b in zip(marks[job["warmup"] - 1 : total - 1], marks[job["warmup"] : total], strict=True)
    ]
    return {"step_s": times, "peak_mib": peak, **summary}


def _reference_step(model, processor, optimizer, clips, fraction, device) -> None:
    from bench.reference import conversation

    inputs = processor.apply_chat_template(
        [conversation(t, a, s) for t, a, s in clips], tokenize=True, return_dict=True, output_labels=True,
        depth_decoder_labels_ratio=fraction,
    )  # fmt: skip
    inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}
    model(**inputs).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- synth


def bench_synth(model: Path, frames: int, dtype: str, batch: int = 1) -> dict:
    """Frames per second of synth's torch backend, single stream and ``batch`` prompts at once
    (`synth --batch-size`), sampling as synth does (a random model never ends a clip early), and
    the profile of generating 2 frames single-stream."""
    import torch
    from voxlora.families.csm.prompt import Turn, build_inputs
    from voxlora.synth.backend import generate_batch
    from voxlora.synth.config import SynthConfig
    from voxlora.synth.synthesizer import Synthesizer

    from bench.bench_synth import TEXTS

    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = SynthConfig(model=str(model), backend="torch", device=device, dtype=dtype,
                         max_seconds=frames / 12.5, batch_size=batch)  # fmt: skip
    backend = Synthesizer(config).backend
    prompts = [build_inputs(backend.processor, [Turn(TEXTS[i % len(TEXTS)], 0)], backend.sample_rate)
               for i in range(batch)]  # fmt: skip

    def run(n: int, b: int = 1):
        return generate_batch(backend, [(p, n, seed) for seed, p in enumerate(prompts[:b])], 0.9, 50)

    run(2, batch)  # warm-up
    _sync()
    start = time.perf_counter()
    made = sum(len(c) for c in run(frames))
    _sync()
    wall = time.perf_counter() - start
    start = time.perf_counter()
    made_batched = sum(len(c) for c in run(frames, batch))
    _sync()
    wall_batched = time.perf_counter() - start
    with _profiler() as prof:
        run(2)
        _sync()
    return {"frames": made, "wall_s": wall, "frames_per_s": made / wall, "batch": batch,
            "batched_frames": made_batched, "batched_wall_s": wall_batched,
            "batched_frames_per_s": made_batched / wall_batched, **_profile_summary(prof)}  # fmt: skip


# ---------------------------------------------------------------- the benchmark


def model_folder(workdir: Path, smoke: bool) -> Path:
    from voxlora.demo_model import write_tiny_csm

    from bench.csm_models import random_bf16_csm

    if not smoke:
        return random_bf16_csm(workdir, "full")  # shared with bench mlx-memory's full size
    folder = workdir / "csm-tiny"
    if not (folder / "config.json").is_file():
        write_tiny_csm(folder, seed=0)
    return folder


def run_benchmark(workdir: Path, smoke: bool) -> tuple[list[dict], dict]:
    import torch
    from voxlora.families.csm.sequences import decoder_frames

    p = SMOKE if smoke else FULL
    dtype = "bf16" if torch.cuda.is_available() or not smoke else "fp32"
    model = model_folder(workdir, smoke)
    manifest = make_clips(workdir / "gpu-clips", p["clips"], p["frames"])
    config, texts, modules, _, lora = flop_inputs(model, manifest)
    rate, rate_from = peak_rate(torch.bfloat16 if dtype == "bf16" else torch.float32)
    rows, profiles = [], {}
    for fraction in (1.0, 1 / 16):
        job = dict(model=str(model), manifest=str(manifest), cache=str(workdir / f"gpu-codes-{model.name}"),
                   batch=p["batch"], fraction=fraction, warmup=p["warmup"], steps=p["steps"], modules=modules,
                   dtype=dtype)  # fmt: skip
        flops = step_flops(config, [sum(texts) / len(texts)] * p["batch"], p["frames"],
                           decoder_frames(p["frames"], fraction), lora)  # fmt: skip
        compiling = (False, True) if not smoke or fraction == 1.0 else (False,)  # smoke: < 1 minute
        for side, compiled in [*(("voxlora", c) for c in compiling), ("reference", False)]:
            # the smoke run stays in this process (seconds, not a torch import per run); its compile
            # is dynamo's capture without a backend compiler (inductor's C++ on a CPU takes minutes)
            one = {**job, "side": side, "profile": side == "voxlora" and fraction == 1.0, "compile": compiled,
                   "compile_backend": "eager" if smoke else None}  # fmt: skip
            result = _worker(one) if smoke else run_worker(one, module="bench.gpu")
            step_s = statistics.median(result["step_s"])
            rows.append({
                "trainer": side, "compile": compiled, "fraction": fraction, "batch": p["batch"], "dtype": dtype,
                "step_s": step_s, "audio_s_per_s": p["batch"] * p["frames"] / 12.5 / step_s,
                "peak_MiB": result["peak_mib"], "TFLOP_per_step": flops / 1e12, "MFU": flops / step_s / rate,
            })  # fmt: skip
            if "table" in result:
                profiles[
                    f"training step (voxlora, amortisation 1, compile {'on' if compiled else 'off'})"
                ] = result
    synth = bench_synth(model, p["synth_frames"], dtype, p["synth_batch"])
    profiles["one generated frame (synth, single stream; the profile covers 2 frames)"] = synth
    return rows, {"synth": synth, "profiles": profiles, "peak_rate": (rate, rate_from)}


def table_rows(rows: list[dict], extra: dict) -> list[dict]:
    out = []
    by = {(r["trainer"], r["compile"], r["fraction"]): r for r in rows}
    for fraction, compiled in ((f, c) for f in (1.0, 1 / 16) for c in (False, True)):
        if ("voxlora", compiled, fraction) not in by:  # the smoke run compiles at amortisation 1 only
            continue
        ours, ref = by[("voxlora", compiled, fraction)], by[("reference", False, fraction)]
        speed = ours["audio_s_per_s"] / ref["audio_s_per_s"]
        mem = ours["peak_MiB"] / ref["peak_MiB"]
        name = f"LoRA step, B={ours['batch']}, {ours['dtype']}, amortisation {fraction:g}, compile {'on' if compiled else 'off'}"
        out.append({"benchmark": name, "figure": "audio-s / s", "voxlora": f"{ours['audio_s_per_s']:.3g}",
                    "against": f"recipe {ref['audio_s_per_s']:.3g}", "ratio": f"{speed:.2f}x",
                    "target": ">= 3x" if fraction < 1 else ""})  # fmt: skip
        out.append({"benchmark": name, "figure": "peak memory MiB", "voxlora": f"{ours['peak_MiB']:,.0f}",
                    "against": f"recipe {ref['peak_MiB']:,.0f}", "ratio": f"{mem:.2f}x", "target": "<= 0.6x"})  # fmt: skip
        out.append({"benchmark": name, "figure": "MFU", "voxlora": f"{100 * ours['MFU']:.1f}%",
                    "against": f"recipe {100 * ref['MFU']:.1f}%", "ratio": "",
                    "target": ">= 35%" if fraction == 1.0 else ""})  # fmt: skip
    synth = extra["synth"]
    out.append({"benchmark": "synth single stream", "figure": "frames / s", "voxlora": f"{synth['frames_per_s']:.3g}",
                "against": "real time 12.5", "ratio": f"{synth['frames_per_s'] / 12.5:.2f}x", "target": ">= 4x"})  # fmt: skip
    out.append({"benchmark": f"synth batched (--batch-size {synth['batch']})", "figure": "frames / s",
                "voxlora": f"{synth['batched_frames_per_s']:.3g}", "against": "real time 12.5",
                "ratio": f"{synth['batched_frames_per_s'] / 12.5:.2f}x", "target": ">= 50x"})  # fmt: skip
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="the tiny model, a few steps: any machine, < 1 min"
    )
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the results file")
    args = parser.parse_args(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA GPU here; --smoke runs the small configuration anywhere")
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, extra = run_benchmark(args.workdir, args.smoke)
    table = table_rows(rows, extra)
    rate, rate_from = extra["peak_rate"]
    gpu = device_name()
    setting = (f"{gpu}, torch {torch.__version__}, peak rate {rate / 1e12:.3g} TFLOP/s ({rate_from}); "
               f"{'smoke (tiny model)' if args.smoke else 'random full-size CSM-1B, bf16'}; "
               f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    parts = [f"# voxlora GPU benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}", "", setting, "",
             "MFU = model FLOPs per step / step time / peak rate; FLOPs: 2 per parameter per token forward, "
             "x2 more for the backward of a frozen base into LoRA, plus attention and the LoRA pairs "
             "(bench/gpu.py, bench/bench_train.py `step_flops`).", "",
             markdown(table), "", "## training, per trainer", "", markdown(rows), ""]  # fmt: skip
    for title, prof in extra["profiles"].items():
        parts += [f"## profile: {title}", "",
                  f"host time in kernel launches {100 * prof['launch_share']:.1f}%, in syncs "
                  f"{100 * prof['sync_share']:.1f}%; host syncs (reads of the device) {prof['host_syncs']}",
                  "", "```", prof["table"], "```", ""]  # fmt: skip
    slug = "".join(c if c.isalnum() else "-" for c in gpu).strip("-").lower() or "gpu"
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{datetime.date.today().isoformat()}-{slug}{'-smoke' if args.smoke else ''}.md"
    path.write_text("\n".join(parts))
    print(setting)
    print(markdown(table))
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:
        sys.exit(main())
