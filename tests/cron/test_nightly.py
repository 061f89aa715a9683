"""README's nightly job, run as written: SIGKILLed while it trains, then run again, it finishes
the same run (hf-fetch and mkmanifest redo nothing, lora-train resumes from its checkpoint)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.datagen import make_hf_dataset

ROOT = Path(__file__).parents[2]
STEPS = 6  # killed once step 2 is saved: four steps of margin before the run could end


def nightly_script() -> str:
    """The ``sh`` block after README's "**A nightly job**"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("**A nightly job**", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]


def run_folder(job: Path) -> Path | None:
    found = sorted((job / "runs").glob("voice-*"))
    return found[0] if found else None


def test_the_nightly_job_killed_while_training_finishes_its_run_the_next_night(tiny_csm, tmp_path):
    job = tmp_path / "voice"
    make_hf_dataset(job / "incoming", "ljspeech", n=4)
    (job / "nightly.sh").write_text(nightly_script())
    (job / "voice.yaml").write_text(
        f"model: {tiny_csm}\nmax_steps: {STEPS}\nsave_every: 1\nlog_every: 1\nbatch_size: 2\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    log = job / "nightly.log"
    with open(log, "wb") as out:
        night = subprocess.Popen(["sh", "nightly.sh"], cwd=job, env=env, stdout=out, stderr=out,
                                 start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 300
        while not ((run := run_folder(job)) and (run / "step_0000002").is_dir()):  # a complete checkpoint
            assert night.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.killpg(night.pid, signal.SIGKILL)  # the whole job, mid-training
        night.wait()
    assert not (run / "adapter_model.safetensors").exists()

    again = subprocess.run(["sh", "nightly.sh"], cwd=job, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "kept 4 clips fetched before, fetched 0" in again.stderr  # hf-fetch: nothing again
    assert "4 clips already in" in again.stderr and ", 0 written" in again.stderr  # mkmanifest: nothing again
    assert re.search(rf"resuming from runs/{run.name}/step_000000[2-5] at step [2-5]\n", again.stderr)
    assert run_folder(job) == run and (job / "runs" / "latest").resolve() == run.resolve()
    assert (job / "runs" / "latest" / "adapter_model.safetensors").is_file()
    steps = [
        r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r
    ]
    assert steps == list(range(1, STEPS + 1))
