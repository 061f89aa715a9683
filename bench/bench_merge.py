"""lora-merge on a full-size (random) CSM-1B: wall time next to a plain copy, peak memory next to
the largest tensor. The claim under test: merging streams, so it costs about a copy in time and
about one tensor (not one shard, not the model) in memory.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
# Runs one command as its only child and prints that child's peak RSS (KiB on Linux).
_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _timed_peak(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of ``cmd`` run in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024


def _largest_tensor_mib(model: Path) -> float:
    from voxlora.models.csm import weight_files
    from voxlora.safetensors_stream import read_header

    largest = 0
    for file in weight_files(model):
        for info in read_header(file)[0].values():
            begin, end = info["data_offsets"]
            largest = max(largest, end - begin)
    return largest / 2**20


def _copy(model: Path, dest: Path) -> float:
    """Seconds to copy the folder's files and fsync them (lora-merge fsyncs its output too)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    start = time.perf_counter()
    for f in model.iterdir():
        shutil.copyfile(f, dest / f.name)  # os.sendfile on Linux: the fastest plain copy
        with open(dest / f.name, "rb") as g:
            os.fsync(g.fileno())
    wall = time.perf_counter() - start
    shutil.rmtree(dest)
    return wall


def bench_merge(workdir, rounds: int = 2, with_bf16: bool = True) -> list[dict]:
    """Rows for the bench table: copy + fsync vs lora-merge (fp32 and bf16) on a random CSM-1B (~6 GB).

    There is no warm-up run: writing the checkpoint (or the previous run) leaves it in the page cache.
    """
    from bench.csm_models import write_full_csm

    workdir = Path(workdir)
    model = workdir / "csm-1b-random"
    if not (model / "model.safetensors.index.json").is_file():
        write_full_csm(model, seed=0)
    adapter = workdir / "adapter-all-linear-r16"
    subprocess.run(
        [
            str(BIN / "lora-init"),
            "--model",
            str(model),
            "--targets",
            "all-linear",
            "-r",
            "16",
            "--alpha",
            "32",
            "-o",
            str(adapter),
            "-q",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    size_gb = sum(f.stat().st_size for f in model.glob("*.safetensors")) / 1e9
    largest = _largest_tensor_mib(model)
    modules = json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
    # what any process importing torch costs, before it reads a single tensor
    wall, peak = _timed_peak([sys.executable, "-c", "import torch, safetensors.torch"])
    rows = [{"what": "baseline: python importing torch", "wall_s": wall, "peak_RSS_MiB": peak}]
    base = [
        str(BIN / "lora-merge"), "--model", str(model), "--adapter", str(adapter), "-o", str(workdir / "merged"), "-q",
    ]  # fmt: skip
    runs = {"copy": [], "fp32": [], "bf16": []}
    for r in range(rounds):  # copy and merge interleaved, the order alternating; bf16 once per round
        for what in ("copy", "fp32") if r % 2 == 0 else ("fp32", "copy"):
            if what == "copy":
                runs["copy"].append((_copy(model, workdir / "copy"), float("nan")))
            else:
                runs["fp32"].append(_timed_peak(base))
                shutil.rmtree(workdir / "merged")
        if with_bf16 and r == 0:
            runs["bf16"].append(_timed_peak(base + ["--dtype", "bf16"]))
            shutil.rmtree(workdir / "merged")
    rows.append(
        {
            "what": "copy + fsync",
            "checkpoint_GB": size_gb,
            "wall_s": statistics.median(w for w, _ in runs["copy"]),
            "runs": len(runs["copy"]),
        }
    )
    for dtype in ("fp32", "bf16"):
        if not runs[dtype]:
            continue
        rows.append(
            {
                "what": f"lora-merge all-linear r16 ({len(modules)} modules){', to bf16' if dtype == 'bf16' else ''}",
                "checkpoint_GB": size_gb,
                "wall_s": statistics.median(w for w, _ in runs[dtype]),
                "peak_RSS_MiB": statistics.median(p for _, p in runs[dtype]),
                "largest_tensor_MiB": largest,
                "runs": len(runs[dtype]),
            }
        )
    return rows


if __name__ == "__main__":  # python -m bench.bench_merge [WORKDIR]: a one-off run, the table on stdout
    from bench.table import markdown

    print(markdown(bench_merge(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "work")))
