"""synth as a shell runs it: lora-init makes an adapter, synth speaks stdin lines with and without it,
and its JSONL feeds mkmanifest."""

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(cmd: str, cwd) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, env=env)


def test_init_then_synth_into_mkmanifest(tiny_csm, tmp_path):
    lines = [
        "Hello there.",
        json.dumps({"text": "Hello there.", "adapter": "a0", "speaker": 0}),
        json.dumps({"text": "Hello there.", "adapter": "a0", "out": "merged/x.wav"}),
    ]
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")
    result = run(
        f"lora-init --model {tiny_csm} -o a0 >/dev/null && "
        f"synth --model {tiny_csm} --max-seconds 0.24 --out-dir gen < lines.txt | mkmanifest - > train.jsonl",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [Path(r["audio"]).relative_to(tmp_path).as_posix() for r in records] == [
        "gen/0001.wav",
        "gen/0002.wav",
        "merged/x.wav",
    ]
    assert all(r["text"] == "Hello there." and r["sample_rate"] == 24000 for r in records)
    assert all(0 < r["duration"] <= 0.24 for r in records)
    assert [r["adapter"] for r in records] == [None, "a0", "a0"]  # synth's keys pass through mkmanifest
    # a fresh adapter (B = 0) leaves the model as it is: the same seed gives the same audio
    wavs = [(tmp_path / r["audio"]).read_bytes() for r in records]
    assert wavs[0] == wavs[1] == wavs[2]
    assert result.stderr.count("adapter loaded") == 1
