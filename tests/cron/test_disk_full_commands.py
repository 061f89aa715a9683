"""A full disk under every command's output (fault-injected, `tests.diskfull`): the output written
before stays byte for byte as it was, nothing half-written is left under a name that looks whole,
and the error is one line naming the output, exit 1.

Each case runs its command twice in this process: once on a roomy disk (the earlier output), then
with other settings on a disk with ``free`` bytes left, so a write that got through would change
what the first run wrote.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.datagen import make_clips, make_hf_dataset, write_jsonl
from tests.diskfull import full_disk, leftovers

NO_SPACE = "No space left on device"


def invoke(tool: str, args, input=None):
    import importlib

    main = importlib.import_module(f"voxlora.cli.{tool}").main
    return CliRunner().invoke(main.cli, [str(a) for a in args], input=input)


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (or ``out`` itself), by relative path."""
    if out.is_file():
        return {out.name: out.read_bytes()}
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inputs(tiny_csm, tmp_path_factory):
    """What the commands read: the tiny model, an adapter, clips (one silent), a local HF dataset."""
    import numpy as np
    import soundfile as sf

    root = tmp_path_factory.mktemp("disk-full-inputs")
    adapter = invoke("lora_init", ["--model", tiny_csm, "-r", 2, "-o", root / "adapter"])
    assert adapter.exit_code == 0, adapter.output
    clips = make_clips(root / "clips", 3, seconds=0.5, sr=16000)
    sf.write(root / "clips" / "silent.wav", np.zeros(8000, dtype=np.float32), 16000, subtype="PCM_16")
    silent = {"audio": str(root / "clips" / "silent.wav"), "text": "Nothing at all."}
    make_hf_dataset(root / "hf", "librispeech", n=4)
    return {
        "model": tiny_csm,
        "adapter": root / "adapter",
        "two": write_jsonl(root / "two.jsonl", clips[:2]),
        "three": write_jsonl(root / "three.jsonl", clips),
        "rejects1": write_jsonl(root / "rejects1.jsonl", [clips[0], silent]),
        "rejects2": write_jsonl(root / "rejects2.jsonl", [clips[0], silent, {**silent, "text": "Again."}]),
        "hf": root / "hf",
        "clip": clips[0],
    }


SYNTH = ["--max-seconds", 0.5, "--temperature", 0]


def case_lora_init(i, out):
    first = ("lora_init", ["--model", i["model"], "-r", 2, "-o", out / "adapter"], None)
    second = ("lora_init", ["--model", i["model"], "-r", 2, "--seed", 1, "-o", out / "adapter"], None)
    return first, second, out / "adapter", f"{out / 'adapter'}: {NO_SPACE}"


def case_lora_merge(i, out):
    args = ["--model", i["model"], "--adapter", i["adapter"], "-o", out / "merged"]
    first, second = ("lora_merge", args, None), ("lora_merge", [*args, "--dtype", "bf16"], None)
    return first, second, out / "merged", f"{out / 'merged'}: {NO_SPACE}"


def case_synth_output(i, out):
    args = ["--model", i["model"], *SYNTH, "Hello there.", "-o", out / "hello.wav"]
    first, second = ("synth", args, None), ("synth", [*args, "--seed", 1], None)
    return first, second, out / "hello.wav", f"{out / 'hello.wav'}: {NO_SPACE}"


def case_synth_out_dir(i, out):
    args = ["--model", i["model"], *SYNTH, "--out-dir", out / "spoken", "-"]
    first, second = ("synth", args, "One.\n"), ("synth", [*args, "--seed", 1], "One.\nTwo.\n")
    return first, second, out / "spoken", f"{out / 'spoken' / '0001.wav'}: {NO_SPACE}"


def case_mkmanifest_out_dir(i, out):
    args = ["--out-dir", out / "wavs", "--sample-rate", 24000, "-j", 1]
    first, second = ("mkmanifest", [i["two"], *args], None), ("mkmanifest", [i["three"], *args], None)
    return first, second, out / "wavs", f"{out / 'wavs' / 'clip_002.wav'}: cannot write ({NO_SPACE})"


def case_mkmanifest_rejects(i, out):
    first = ("mkmanifest", [i["rejects1"], "--rejects", out / "rejects.jsonl"], None)
    second = ("mkmanifest", [i["rejects2"], "--rejects", out / "rejects.jsonl"], None)
    return first, second, out / "rejects.jsonl", f"{out / 'rejects.jsonl'}: {NO_SPACE}"


def case_hf_fetch(i, out):
    first = ("hf_fetch", [i["hf"], "--out-dir", out / "clips", "--limit", 2], None)
    second = ("hf_fetch", [i["hf"], "--out-dir", out / "clips", "--limit", 4], None)
    return first, second, out / "clips", f"{out / 'clips' / 'train.clean.100-000002.wav'}: {NO_SPACE}"


def case_lora_eval(i, out):
    clip = json.dumps({**i["clip"], "speaker": 0}) + "\n"
    args = ["--reference", i["two"], "-", "-o", out / "report"]
    first, second = ("lora_eval", args, clip), ("lora_eval", [*args, "--overwrite"], clip + clip)
    return first, second, out / "report", f"{out / 'report'}: {NO_SPACE}"


CASES = {
    "lora-init": (case_lora_init, 0),
    "lora-merge": (case_lora_merge, 100_000),  # the copied config files fit; a weights file does not
    "synth -o": (case_synth_output, 0),
    "synth --out-dir": (case_synth_out_dir, 1000),  # the folder's marker fits, the first WAV does not
    "mkmanifest --out-dir": (case_mkmanifest_out_dir, 1000),  # its journal fits, a WAV does not
    "mkmanifest --rejects": (case_mkmanifest_rejects, 0),
    "hf-fetch --out-dir": (case_hf_fetch, 1000),
    "lora-eval -o": (case_lora_eval, 2000),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_full_disk_keeps_the_earlier_output_and_says_so_in_one_line(name, inputs, tmp_path, monkeypatch):
    make, free = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    first, second, output, message = make(inputs, out)
    done = invoke(*first)
    assert done.exit_code == 0, done.output
    before = snapshot(output)
    disk = full_disk(monkeypatch, where=out, free=free)
    failed = invoke(*second)
    monkeypatch.undo()
    assert disk.failures >= 1, "the disk never filled: the case tests nothing"
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.splitlines()[-1] == f"Error: {message}", failed.stderr
    assert "Traceback" not in failed.stderr and "internal error" not in failed.stderr
    assert snapshot(output) == before  # every earlier file, byte for byte; no new one
    assert leftovers(out) == []


PROBE = """
import json, os, sys
import pytest
from tests.diskfull import failures, full_disk
real, simulated, source = sys.argv[1:4]
with open(source, "wb") as f:
    f.write(os.urandom(1 << 20))
found = [failures(real, source)]
patch = pytest.MonkeyPatch()
full_disk(patch, where=simulated, free=64 << 10)
found.append(failures(simulated, source))
print(json.dumps(found))
"""


def test_the_simulated_full_disk_fails_as_a_real_one(tmp_path):
    """Each writer on a real 64 KiB tmpfs (mounted in a user namespace) and on `full_disk`'s."""
    import shutil
    import subprocess
    import sys

    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0
    ):
        pytest.skip("no unshare -rm here (user namespaces) to mount a small tmpfs")
    real, simulated = tmp_path / "real", tmp_path / "simulated"
    real.mkdir(), simulated.mkdir()
    mount = 'mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", mount, "sh", real, sys.executable, "-c", PROBE, real, simulated,
         tmp_path / "source.bin"],  # fmt: skip
        capture_output=True, text=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    on_real, on_simulated = json.loads(done.stdout)
    assert len(on_real) == 6 and all(found[1] != "no error" for found in on_real)
    assert on_simulated == on_real
