"""lora-train --model VOXCPM on 2 processes (torchrun, gloo on CPU) trains as one process of batch 4.

VoxCPM's diffusion draws are seeded per clip (`voxlora.families.voxcpm.draws`: the seed, the epoch,
the clip), so a clip draws the same time steps and noise on either rank as in one batch of 4.
No dropout: each rank draws its own (as for CSM and Higgs). One 2-process job (most of its time is
starting and importing on 2 ranks) against the 1-process run in this process; 2 steps, the second
from the first's update.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import load_file

from tests.distributed.test_ddp import LORA_TRAIN, assert_close, env, in_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torchrun with gloo")


def test_two_processes_of_batch_2_train_as_one_process_of_batch_4(tiny_v1, tmp_path):
    for i in range(4):
        t = np.arange(800 + 320 * i) / 16000
        sf.write(
            tmp_path / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t)).astype(np.float32), 16000
        )
    lines = [{"audio": f"c{i}.wav", "text": f"Clip {i}"} for i in range(4)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    common = ["--model", tiny_v1, "--manifest", tmp_path / "t.jsonl", "--max-steps", 2, "--lr", 1e-2,
              "--log-every", 1, "--targets", "attn,proj", "--seed", 3, "--cache-dir", tmp_path / "latents"]  # fmt: skip
    alone = in_process([str(a) for a in (*common, "--batch-size", 4, "-o", tmp_path / "one")])
    two = subprocess.run(
        [str(LORA_TRAIN), *map(str, (*common, "--batch-size", 2, "--nproc", 2, "-o", tmp_path / "two"))],
        capture_output=True, text=True, env=env(), timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert "2 processes (gloo): each step is 2 micro-batches" in two.stderr
    a = load_file(tmp_path / "one" / "lora_weights.safetensors")
    b = load_file(tmp_path / "two" / "lora_weights.safetensors")
    assert any(float(t.abs().max()) > 0 for n, t in a.items() if n.endswith("lora_B"))  # it trained
    assert_close(a, b)
    mine = [json.loads(x) for x in two.stdout.splitlines()]
    assert [r.get("step") for r in mine] == [1, 2, 2]  # rank 0 alone prints
    for ours, theirs in zip(mine[:-1], alone[:-1], strict=True):  # losses summed over both ranks
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
