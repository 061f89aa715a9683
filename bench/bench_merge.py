"""lora-merge on a full-size (random) CSM-1B: wall time next to a plain copy, peak memory next to
the largest tensor. The claim under test: merging streams, so it costs about a copy in time and
about one tensor (not one shard, not the model) in memory.
"""

import json
import shutil
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
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    start = time.perf_counter()
    for f in model.iterdir():
        shutil.copy(f, dest / f.name)
    return time.perf_counter() - start


def bench_merge(workdir) -> list[dict]:
    """Rows for the bench table: copy vs lora-merge (fp32 and bf16) on a random CSM-1B (~6 GB)."""
    from voxlora.models.tiny import write_full_csm

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
    rows = [
        {
            "what": "shutil.copy of the folder",
            "checkpoint_GB": size_gb,
            "wall_s": _copy(model, workdir / "copy"),
        }
    ]
    shutil.rmtree(workdir / "copy")
    # what any process importing torch costs, before it reads a single tensor
    wall, peak = _timed_peak([sys.executable, "-c", "import torch, safetensors.torch"])
    rows.append({"what": "baseline: python importing torch", "wall_s": wall, "peak_RSS_MiB": peak})
    for dtype in (None, "bf16"):
        out = workdir / "merged"
        cmd = [
            str(BIN / "lora-merge"),
            "--model",
            str(model),
            "--adapter",
            str(adapter),
            "-o",
            str(out),
            "-q",
        ]
        wall, peak = _timed_peak(cmd + (["--dtype", dtype] if dtype else []))
        rows.append(
            {
                "what": f"lora-merge all-linear r16 ({len(modules)} modules){', to bf16' if dtype else ''}",
                "checkpoint_GB": size_gb,
                "wall_s": wall,
                "peak_RSS_MiB": peak,
                "largest_tensor_MiB": largest,
            }
        )
        shutil.rmtree(out)
    return rows


if __name__ == "__main__":  # python -m bench.bench_merge [WORKDIR]: a one-off run, the table on stdout
    from bench.table import markdown

    print(markdown(bench_merge(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "work")))
