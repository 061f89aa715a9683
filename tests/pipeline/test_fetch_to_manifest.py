"""Real processes in a real shell pipe: hf-fetch | mkmanifest, as the README and demo.sh run them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from tests.datagen import make_bad_manifest, make_corpus_folder, make_hf_dataset

BIN = Path(sys.executable).parent  # the venv's console scripts


def sh(command: str, cwd, env=None, pipefail=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    strict = "set -euo pipefail; " if pipefail else ""
    return subprocess.run(
        ["bash", "-c", strict + command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_fetch_pipe_mkmanifest_gives_24k_mono_clips(tmp_path):
    make_hf_dataset(tmp_path / "ds", "common_voice", n=7)  # 48 kHz mp3 inside
    run = sh(
        "hf-fetch ds --limit 5 --out-dir a | mkmanifest - --sample-rate 24000 --out-dir b > train.jsonl",
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert len(records) == 5 and len(list((tmp_path / "a").glob("*.wav"))) == 5
    for r in records:
        info = sf.info(r["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
        assert Path(r["audio"]).parent == tmp_path / "b"
        assert r["text"] and r["speaker"] in (0, 1) and r["sample_rate"] == 24000 and r["duration"] > 0.7
        assert r["source"]["dataset"] == "ds"  # hf-fetch's keys pass through mkmanifest
    assert run.stderr.splitlines()[-1] == "kept 5 clips (4.0 s); rejected 0"


def test_folder_pipe_head_ends_quietly(tmp_path):
    make_corpus_folder(tmp_path / "c", "ljspeech", n=6)
    run = sh("mkmanifest c | head -n 1; echo ${PIPESTATUS[0]} >&2", tmp_path, pipefail=False)
    assert len(run.stdout.splitlines()) == 1
    assert run.stderr.splitlines()[-1] in ("0", "141")  # done, or ended by SIGPIPE as Unix tools are
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr


def test_bad_input_in_a_pipe_keeps_the_good_and_exit_0(tmp_path):
    make_bad_manifest(tmp_path)
    run = sh("cat train.jsonl | mkmanifest - --jobs 2 --out-dir o > out.jsonl", tmp_path)
    assert run.returncode == 0, run.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    assert run.stderr.splitlines()[-1].startswith("kept 3 clips (3.1 s); rejected 15: ")
    strict = sh("mkmanifest train.jsonl --strict > /dev/null", tmp_path)
    assert (
        strict.returncode == 1
        and strict.stderr == "Error: train.jsonl:2: invalid JSON (Expecting value, column 1)\n"
    )


def test_hub_id_without_network_fails_fast_with_one_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9", "HTTPS_PROXY": "", "https_proxy": ""}
    run = sh(
        "hf-fetch openslr/librispeech_asr --config clean --limit 3 --out-dir a | mkmanifest - > t.jsonl",
        tmp_path,
        env,
    )
    # no timing (a noisy machine): "Connection refused" in the one line shows the up-front probe
    # answered and hf-fetch stopped there, never reaching the Hub client's ~25 s of retries
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "Error: openslr/librispeech_asr: not a local file or folder, and the Hugging Face Hub is unreachable "
        "(cannot connect to 127.0.0.1: Connection refused); give the path of a local dataset instead",
        "Error: <stdin>: no clips in the input (it is empty)",  # mkmanifest, on the empty stream it got
    ]
