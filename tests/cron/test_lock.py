"""One writer per output folder: a second command is refused naming the holder; a dead holder's lock is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.datagen import make_clips, write_jsonl

HOLD = """
import sys, time
from voxlora.lock import output_lock
with output_lock(sys.argv[1], "lora-train"):
    print("held", flush=True)
    time.sleep(120)
"""


def run_tool(module: str, *args, **kwargs):
    code = f"from voxlora.cli.{module} import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, **kwargs
    )


@pytest.fixture
def holder(tmp_path):
    """A real second process holding the lock of tmp_path/out until killed."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_lora_train_is_refused_naming_the_holder(holder, tmp_path):
    out, proc = holder
    result = run_tool("lora_train", "--model", "m", "--manifest", "t.jsonl", "-o", out, timeout=120)
    assert result.returncode == 1
    line = f"Error: {out}: in use by lora-train (PID {proc.pid} on {socket.gethostname()}, since "
    assert result.stderr.startswith(line) and result.stderr.count("\n") == 1, result.stderr
    assert not out.exists()


def test_a_killed_holders_lock_is_taken_over(holder, tmp_path):
    out, proc = holder
    clips = write_jsonl(tmp_path / "in.jsonl", make_clips(tmp_path / "src", 2, seconds=0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = tmp_path / ".out.lock"
    assert json.loads(lock.read_text())["pid"] == proc.pid  # the dead holder's file is still there
    result = run_tool("mkmanifest", clips, "--out-dir", out, "--sample-rate", 8000, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of lora-train (PID {proc.pid} on {socket.gethostname()}" in result.stderr
    assert len(result.stdout.splitlines()) == 2 and not lock.exists()  # released at the end


@pytest.mark.parametrize("tool", ["hf_fetch", "mkmanifest", "lora_merge"])
def test_every_writing_command_takes_the_lock(holder, tmp_path, tool, tiny_csm):
    import importlib

    out, proc = holder
    source = tmp_path / "in"  # an input beside the output (voxlora.outputs refuses one around it)
    source.mkdir()
    args = {
        "hf_fetch": [str(source), "--out-dir", str(out)],
        "mkmanifest": [str(source), "--out-dir", str(out)],
        "lora_merge": ["--model", str(tiny_csm), "--adapter", str(source), "-o", str(out)],
    }[tool]
    main = importlib.import_module(f"voxlora.cli.{tool}").main
    result = CliRunner().invoke(main.cli, args)
    assert result.exit_code == 1
    last = result.output.splitlines()[-1]
    assert last.startswith(f"Error: {out}: in use by lora-train (PID {proc.pid} on "), result.output


def test_the_lock_is_released_and_reentrant_after_use(tmp_path):
    from voxlora.lock import Locked, lock_path, output_lock

    with output_lock(tmp_path / "a", "x"):
        assert json.loads(lock_path(tmp_path / "a").read_text())["pid"] == os.getpid()
        with pytest.raises(Locked), output_lock(tmp_path / "a", "y"):
            pass
    assert not lock_path(tmp_path / "a").exists()
    with output_lock(tmp_path / "a", "x"):
        pass
