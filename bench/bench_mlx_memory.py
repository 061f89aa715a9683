"""MLX memory: peak resident memory of `synth --backend mlx --dtype bf16` (one short clip) and of
one `lora-train --backend mlx --dtype bf16` LoRA step at batch 1, against the size of the bf16
weights, on a random full-size CSM-1B saved in bf16 (the checkpoint, codec included, is the
yardstick: 1.0x is holding every weight once).

The claim under test (issue 14): MLX loads the checkpoint lazily, each tensor read once straight
into the dtype it is used in (`backends.mlx.csm.read_lazy`), and lora-train reads only the codec's tensors
for coding clips (`families.csm.codec_alone`), never the whole torch CSM. Targets: synth <= 1.3x, a LoRA step
<= 1.6x. Each command runs in a fresh process; its peak RSS is the child's ``ru_maxrss``.
"""

import json
import sys
from pathlib import Path

from bench.bench_merge import _timed_peak

BIN = Path(sys.executable).parent
TARGETS = {"synth": 1.3, "lora-train": 1.6}


def weights_mib(model: Path) -> float:
    """Bytes of every tensor in the checkpoint (from the headers), in MiB."""
    from voxlora.models.csm import weight_files
    from voxlora.safetensors_stream import read_header

    total = 0
    for file in weight_files(model):
        for info in read_header(file)[0].values():
            begin, end = info["data_offsets"]
            total += end - begin
    return total / 2**20


def bench_mlx_memory(workdir, size: str = "full") -> list[dict]:
    """Rows: {what, peak_RSS_MiB, weights_MiB, ratio, target, wall_s} for synth and one LoRA step."""
    from bench.bench_train import make_clips

    workdir = Path(workdir)
    from bench.csm_models import random_bf16_csm

    model = random_bf16_csm(workdir, size)
    weights = weights_mib(model)
    out = workdir / f"mlx-memory-{size}"
    out.mkdir(parents=True, exist_ok=True)
    manifest = make_clips(workdir / "clips", 1, 25)  # one 2 s clip
    runs = {
        "synth": [
            str(BIN / "synth"), "--backend", "mlx", "--dtype", "bf16", "--device", "cpu", "--model", str(model),
            "--max-seconds", "0.3", "--seed", "0", "-q", "Hello there.", "-o", str(out / "hello.wav"),
        ],
        "lora-train": [
            str(BIN / "lora-train"), "--backend", "mlx", "--dtype", "bf16", "--device", "cpu", "--model",
            str(model), "--manifest", str(manifest), "--max-steps", "1", "--batch-size", "1", "--log-every", "1",
            "--cache-dir", str(out / "codes"), "-q", "-o", str(out / "run"),
        ],
    }  # fmt: skip
    rows = []
    for what, cmd in runs.items():
        wall, peak = _timed_peak(cmd)
        rows.append(
            {
                "what": f"{what} --backend mlx --dtype bf16"
                + (", 1 LoRA step, batch 1" if what != "synth" else ", 0.3 s"),
                "model": f"random CSM ({size}), bf16 checkpoint",
                "peak_RSS_MiB": round(peak),
                "weights_MiB": round(weights),
                "ratio": round(peak / weights, 3),
                "target": TARGETS[what],
                "wall_s": round(wall, 1),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows
