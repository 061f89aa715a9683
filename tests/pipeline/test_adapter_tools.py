"""The adapter tools as a shell runs them: real subprocesses, records passed through pipes."""

import json
import subprocess
import sys
from pathlib import Path

import torch

BIN = Path(sys.executable).parent


def run(cmd: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        shell=True,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )


def test_init_pipes_into_inspect(tiny_csm, tmp_path):
    result = run(
        f"lora-init --model {tiny_csm} --targets attn --layers 1-2 -o a1 | lora-inspect --json - "
        f"--model {tiny_csm}",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["adapter"] == "a1" and report["problems"] == []
    assert report["layers"] == {"backbone": "1-2", "decoder": "1"} and report["modules"] == 12
    assert "Traceback" not in result.stderr


def test_merge_then_load(tiny_csm, tmp_path):
    from transformers import CsmForConditionalGeneration

    result = run(
        f"lora-init --model {tiny_csm} --train-embeddings -o a1 -q && "
        f"lora-merge --model {tiny_csm} --adapter a1 -o merged",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["model"] == "merged" and record["merged"] == 12 and record["replaced"] == 2
    merged = CsmForConditionalGeneration.from_pretrained(tmp_path / "merged")
    base = CsmForConditionalGeneration.from_pretrained(tiny_csm)
    # a fresh adapter (B = 0, embeddings copied) changes nothing
    merged_state, base_state = merged.state_dict(), base.state_dict()
    assert merged_state.keys() == base_state.keys()
    assert all(torch.equal(merged_state[k], base_state[k]) for k in base_state)


def test_errors_are_one_line_and_exit_1(tiny_csm, tmp_path):
    result = run(f"lora-merge --model {tiny_csm} --adapter missing -o out", tmp_path)
    assert result.returncode == 1
    assert result.stderr == "Error: missing: no such adapter folder\n"
