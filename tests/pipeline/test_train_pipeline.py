"""lora-train in real shell pipes: mkmanifest | lora-train, lora-init && lora-train, then lora-merge."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.datagen import make_corpus_folder

BIN = Path(sys.executable).parent  # the venv's console scripts


def sh(command: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail; " + command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_corpus_to_trained_adapter_to_merged_model(tiny_csm, tmp_path):  # noqa: F811
    make_corpus_folder(tmp_path / "corpus", "plain", n=4, sr=16000)
    run = sh(
        f"mkmanifest corpus --sample-rate 24000 --out-dir wav24 -q "
        f"| lora-train --model {tiny_csm} --manifest - -o runs/a1 --max-steps 3 --log-every 1 "
        f"> train.out && tail -n 1 train.out "
        f"| python -c 'import json,sys; print(json.load(sys.stdin)[\"adapter\"])' "
        f"| xargs -I{{}} lora-merge --model {tiny_csm} --adapter {{}} -o merged -q",
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in (tmp_path / "train.out").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 3]
    assert records[-1]["adapter"] == "runs/a1"
    assert "Traceback" not in run.stderr and "trained 3 steps" in run.stderr
    assert (tmp_path / "merged" / "model.safetensors").is_file()


def test_lora_init_then_lora_train(tiny_csm, tmp_path):  # noqa: F811
    make_corpus_folder(tmp_path / "corpus", "plain", n=3, sr=24000)
    run = sh(
        f"mkmanifest corpus -q > train.jsonl && "
        f"lora-init --model {tiny_csm} --targets attn -r 4 -o a0 -q > /dev/null && "
        f"lora-train --model {tiny_csm} --adapter a0 --manifest train.jsonl -o a1 --max-steps 2 -q | tail -n 1",
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"adapter": "a1", "step": 2, "model": str(tiny_csm)}
    assert run.stderr == ""  # -q: nothing but warnings
    config = json.loads((tmp_path / "a1" / "adapter_config.json").read_text())
    assert config["r"] == 4 and len(config["target_modules"]) == 24
