"""lora-train --model VOXCPM on 2 processes (torchrun, gloo on CPU) trains as one process.

VoxCPM's diffusion draws are seeded per micro-batch (`data.batch_seed`: its clips, the epoch, the
seed), so 2 processes x batch 2 equal 1 process x batch 2 x grad-accum 2: the same micro-batches,
the same draws. (1 x batch 4 is one micro-batch of 4 clips: other draws, as VoxCPM's own trainer
would make them, so equal only in expectation.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.cli.lora_train import main as train_main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun with gloo")
LORA_TRAIN = Path(sys.executable).parent / "lora-train"


def test_two_processes_of_batch_2_train_as_one_of_batch_2_times_2(tiny_v1, tmp_path):
    for i in range(4):
        t = np.arange(1200 + 400 * i) / 16000
        sf.write(
            tmp_path / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t)).astype(np.float32), 16000
        )
    lines = [{"audio": f"c{i}.wav", "text": f"Clip number {i}"} for i in range(4)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    common = ["--model", tiny_v1, "--manifest", tmp_path / "t.jsonl", "--max-steps", "3", "--batch-size", "2"]
    common += ["--lr", "1e-2", "--log-every", "1", "--targets", "attn,proj", "--dropout", "0.1"]
    common = [str(a) for a in common]
    alone = CliRunner().invoke(train_main.cli, [*common, "--grad-accum", "2", "-o", str(tmp_path / "one")])
    assert alone.exit_code == 0, alone.output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    two = subprocess.run(
        [str(LORA_TRAIN), *common, "--nproc", "2", "-o", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert two.returncode == 0, two.stderr
    a, b = (
        load_file(tmp_path / "one" / "lora_weights.safetensors"),
        load_file(tmp_path / "two" / "lora_weights.safetensors"),
    )
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-5, f"adapters differ by {worst}"
    losses = [json.loads(x)["loss"] for x in alone.stdout.splitlines() if '"loss"' in x]
    again = [json.loads(x)["loss"] for x in two.stdout.splitlines() if '"loss"' in x]
    assert np.allclose(losses, again, rtol=1e-5, atol=1e-6) and len(losses) == 3
