"""`make bench`: every benchmark, one table on stdout, saved with the details to bench/results/.

    python -m bench                              everything (about 15-20 minutes on 2 cores)
    python -m bench --only train --sizes small   one part, quickly (train | merge | mkmanifest | mlx-memory | synth)

Each row is one figure: voxlora's value, what it is measured against (the transformers recipe, a
plain copy, the machine's matmul rate, real time), their ratio and the issue's target for it.
Figures are medians over runs after a warm-up; the two sides of a ratio come from runs
interleaved in this one invocation. Models, clips and checkpoints are made once in bench/work/.
"""

import argparse
import os
import platform
import sys
from pathlib import Path

from bench.table import markdown, save

WORK = Path(__file__).parent / "work"
PARTS = ("train", "merge", "mkmanifest", "mlx-memory", "synth")


def _row(benchmark, figure, ours, against="", ratio=None, target="", met=None) -> dict:
    return {
        "benchmark": benchmark,
        "figure": figure,
        "voxlora": ours,
        "against": against,
        "ratio": "" if ratio is None else f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x",
        "target": target,
        "met": "" if met is None else "yes" if met else "NO",
    }


def train_rows(result: dict) -> list[dict]:
    rows, by = [], {}
    for r in result["rows"]:
        by.setdefault((r["size"], r["fraction"]), {})[r["trainer"]] = r
    for (size, fraction), sides in by.items():
        ours, ref = sides["voxlora"], sides["reference"]
        name = f"train {size} ({ours['params_M']:.0f}M), B={ours['batch']}, decoder fraction {fraction:g}"
        if fraction == 1.0:
            name += " (reference's default)"
        speed = ours["audio_s_per_s"] / ref["audio_s_per_s"]
        rows.append(
            _row(name, "audio-s / s", f"{ours['audio_s_per_s']:.3g}", f"reference {ref['audio_s_per_s']:.3g}",
                 speed, ">= 3x", speed >= 3)
        )  # fmt: skip
        mem = ours["peak_MiB"] / ref["peak_MiB"]
        rows.append(
            _row(name, "peak RSS MiB", f"{ours['peak_MiB']:,.0f}", f"reference {ref['peak_MiB']:,.0f}",
                 mem, "<= 0.7x", mem <= 0.7)
        )  # fmt: skip
        if "voxlora-mlx" in sides:  # MLX beside torch, same model, clips and settings
            mlx = sides["voxlora-mlx"]
            rows.append(
                _row(name + ", MLX backend", "audio-s / s", f"{mlx['audio_s_per_s']:.3g}",
                     f"voxlora torch {ours['audio_s_per_s']:.3g}", mlx["audio_s_per_s"] / ours["audio_s_per_s"])
            )  # fmt: skip
    for (size, fraction), sides in by.items():
        if fraction != min(f for s, f in by if s == size):
            continue
        ours = sides["voxlora"]
        use = ours["utilisation"]
        target = ">= 50%" if size == "mid" else ""
        rows.append(
            _row(f"utilisation {size}, decoder fraction {fraction:g}",
                 f"model GFLOP/s ({ours['GFLOP_per_step']:.3g} GFLOP/step)", f"{ours['GFLOP_per_s']:.3g}",
                 f"fp32 matmul {ours['matmul_GFLOP_per_s']:.3g}", None, target, use >= 0.5 if target else None)
        )  # fmt: skip
        rows[-1]["ratio"] = f"{100 * use:.0f}%"
    return rows


def merge_rows(rows: list[dict]) -> list[dict]:
    copy = next(r for r in rows if r["what"].startswith("copy"))
    out = []
    for r in rows:
        if not r["what"].startswith("lora-merge"):
            continue
        ratio = r["wall_s"] / copy["wall_s"]
        name = f"{r['what']}, {r['checkpoint_GB']:.1f} GB"
        fp32 = "bf16" not in r["what"]
        out.append(
            _row(name, "wall s", f"{r['wall_s']:.1f}", f"{copy['what']} {copy['wall_s']:.1f}", ratio,
                 "<= 1.5x" if fp32 else "", ratio <= 1.5 if fp32 else None)
        )  # fmt: skip
        mem = r["peak_RSS_MiB"] / r["largest_tensor_MiB"]
        out.append(
            _row(name, "peak RSS MiB", f"{r['peak_RSS_MiB']:,.0f}", f"largest tensor {r['largest_tensor_MiB']:,.0f}",
                 mem, "<= 2x", mem <= 2)
        )  # fmt: skip
    return out


def mkmanifest_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        all_cores = bool(r["target"])
        out.append(
            _row(f"{r['what']}, {r['clips']} clips, {r['audio_s']:.0f} s", "x real time", f"{r['x_real_time']:.0f}",
                 f"wall {r['wall_s']:.2f} s", None, ">= 300x" if all_cores else "",
                 r["x_real_time"] >= 300 if all_cores else None)
        )  # fmt: skip
    return out


def mlx_memory_rows(rows: list[dict]) -> list[dict]:
    """Peak RSS against the bf16 weights; a missed target fails `make bench` (`main`)."""
    return [
        _row(f"{r['what']}, {r['model']}", "peak RSS MiB", f"{r['peak_RSS_MiB']:,}",
             f"bf16 weights {r['weights_MiB']:,}", r["ratio"], f"<= {r['target']}x", r["ratio"] <= r["target"])
        for r in rows
    ]  # fmt: skip


def synth_rows(rows: list[dict]) -> list[dict]:
    """voxlora's CSM loop against transformers' generate, single stream and batched (CPU, fp32)."""
    by = {(r["what"], r["generator"]): r for r in rows}
    out = []
    for what in dict.fromkeys(r["what"] for r in rows):
        ours, ref = by[(what, "voxlora")], by[(what, "transformers")]
        out.append(
            _row(f"synth {what}, {ours['size']} CSM ({ours['params_M']:.0f}M), fp32", "frames / s",
                 f"{ours['frames_per_s']:.3g}", f"transformers generate {ref['frames_per_s']:.3g}",
                 ours["frames_per_s"] / ref["frames_per_s"])
        )  # fmt: skip
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--sizes", default="small,mid", help="training model sizes: small, mid")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for both trainers [all cores]"
    )
    parser.add_argument("--workdir", type=Path, default=WORK)
    parser.add_argument(
        "--mlx-size", default="full", choices=("full", "mid"), help="mlx-memory's model [full: CSM-1B]"
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    import torch

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    table, details = [], {}
    if "train" in parts:
        from bench.bench_train import bench_train

        result = bench_train(args.workdir, tuple(s.strip() for s in args.sizes.split(",")), threads=threads)
        table += train_rows(result)
        details["training, per trainer"] = result["rows"]
    if "merge" in parts:
        from bench.bench_merge import bench_merge

        rows = bench_merge(args.workdir)
        table += merge_rows(rows)
        details["lora-merge"] = rows
    if "mkmanifest" in parts:
        from bench.bench_mkmanifest import bench_mkmanifest

        rows = bench_mkmanifest(args.workdir)
        table += mkmanifest_rows(rows)
        details["mkmanifest"] = rows
    if "mlx-memory" in parts:
        from bench.bench_mlx_memory import bench_mlx_memory

        rows = bench_mlx_memory(args.workdir, size=args.mlx_size)
        table += mlx_memory_rows(rows)
        details["MLX memory"] = rows
    if "synth" in parts:
        from bench.bench_synth import bench_synth

        rows = bench_synth(args.workdir)
        table += synth_rows(rows)
        details["synth generation"] = rows
    if torch.cuda.is_available():  # the GPU figures are bench.gpu's: say where, never a blank
        table.append(_row("GPU training and synth (CSM-1B, bf16)", "not measured here", "run make bench-gpu"))
    setting = (
        f"{platform.node()}: {os.cpu_count()} cores, torch {torch.__version__}, {threads} torch threads "
        f"for both trainers, fp32"
    )
    print(setting)
    print(markdown(table))
    partial = "" if parts == list(PARTS) and args.sizes == "small,mid" else "-" + "-".join(parts)
    if "train" in parts and args.sizes != "small,mid":
        partial += "-" + args.sizes.replace(",", "-")
    path = save(
        {"results": table, **details}, preamble=setting, suffix=partial
    )  # a part never overwrites all
    print(f"written to {path}", file=sys.stderr)
    missed = [r for r in table if r["met"] == "NO" and r["benchmark"].startswith(("synth", "lora-train"))]
    if missed:  # the MLX memory targets are asserted here (issue 14), not in make test
        print(f"MLX memory target missed: {'; '.join(r['benchmark'] for r in missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
