"""Nothing a user owns is ever destroyed, and every exit code is what the README says.

One table: each row runs a command on tiny models, in a folder laid out like a user's (a base model,
a trained run, a lora-init adapter, a folder of the user's own files, a corpus), and asserts the exit
code, the one ``Error:`` line (the last line of stderr), and that every file that was there before is
byte-identical afterwards. The rows run the command's click command in this process (`run_here`:
click's CliRunner gives the exit code and messages the console script gives, and torch is loaded once
for the table, not once a row); what needs a real process (a closed pipe, the umask) runs the console
script (`run`).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.datagen import make_clips, write_jsonl, write_wav
from tests.trainkit import make_manifest

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run(command: str, *args, cwd, stdin: bytes = b"", umask: int | None = None):
    return subprocess.run(
        [str(BIN / command), *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=ENV,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
        timeout=300,
    )


def run_here(command: str, *args, cwd):
    """``command ARGS`` from the folder ``cwd``, in this process, with an empty stdin; the result reads
    as `run`'s (an exception the command let out is written to stderr as a traceback, as Python would)."""
    import importlib
    import traceback

    from click.testing import CliRunner

    main = importlib.import_module(f"voxlora.cli.{command.replace('-', '_')}").main
    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main.cli, list(map(str, args)), input=b"")
    finally:
        os.chdir(before)
    stderr = result.stderr_bytes
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception)).encode()
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout_bytes, stderr=stderr)


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_csm):
    """A user's folder: M (a base model), runs/voice (a trained run), a0 (a fresh lora-init adapter),
    other-base (an adapter recorded for another base), precious/ (the user's own files), corpus/
    (clips and a manifest), ref.wav, weights.safetensors (not a WAV)."""
    from click.testing import CliRunner
    from voxlora.cli.lora_train import main as train

    home = tmp_path_factory.mktemp("home")
    shutil.copytree(tiny_csm, home / "M")
    manifest = make_manifest(home / "corpus", n=4, seconds=0.3)
    result = CliRunner().invoke(
        train.cli,
        list(map(str, ["--model", home / "M", "--manifest", manifest, "-o", home / "runs" / "voice",
                       "--max-steps", 2, "--save-every", 1, "--log-every", 1, "--batch-size", 2, "-q"])),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert run_here("lora-init", "--model", "M", "-o", "a0", "-q", cwd=home).returncode == 0
    shutil.copytree(home / "a0", home / "other-base")
    meta = json.loads((home / "other-base" / "voxlora.json").read_text())
    (home / "other-base" / "voxlora.json").write_text(json.dumps({**meta, "base_fingerprint": "sha256:00ff"}))
    (home / "precious").mkdir()
    (home / "precious" / "notes.txt").write_text("mine\n")
    write_wav(home / "ref.wav", 0.5, 24000, 3)
    (home / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    make_clips(home / "audio", 2, seconds=0.3)
    (home / "empty.jsonl").write_text("")
    write_jsonl(home / "audio.jsonl", [{"audio": "audio/clip_000.wav", "text": "Hi."}])
    return home


M_IS = "M: the output folder is the base model's folder"
CASES = {
    # lora-init
    "init over the base model": (["lora-init", "--model", "M", "-o", "M"], 1, f"Error: {M_IS}"),
    "init inside the base model": (["lora-init", "--model", "M", "-o", "M/a"], 1, "lies inside the base model"),
    "init over a trained run": (["lora-init", "--model", "M", "-o", "runs/voice"], 1,
                                "runs/voice: holds runs/voice/loss.png, which lora-init did not write"),
    "init over the user's files": (["lora-init", "--model", "M", "-o", "precious"], 1,
                                   "precious: holds precious/notes.txt, which lora-init did not write"),
    "init bad target": (["lora-init", "--model", "M", "-o", "x", "--targets", "wq"], 2, "unknown target 'wq'"),
    "init target of another family": (["lora-init", "--model", "M", "-o", "x", "--targets", "audio-ffn"], 2,
                                      "unknown target 'audio-ffn' for csm"),
    "init rank 0": (["lora-init", "--model", "M", "-o", "x", "-r", "0"], 2, "0 is not in the range"),
    # lora-merge
    "merge over its adapter": (["lora-merge", "--model", "M", "--adapter", "a0", "-o", "a0"], 1,
                               "a0: the output folder is the adapter folder"),
    "merge over the user's files": (["lora-merge", "--model", "M", "--adapter", "a0", "-o", "precious"], 1,
                                    "precious: holds precious/notes.txt, which lora-merge did not write"),
    "merge over the base": (["lora-merge", "--model", "M", "--adapter", "a0", "-o", "M"], 1, f"Error: {M_IS}"),
    "merge another base's adapter": (["lora-merge", "--model", "M", "--adapter", "other-base", "-o", "m"], 1,
                                     "other-base: made for another model (base fingerprint sha256:00ff, M has"),
    "merge bad dtype": (["lora-merge", "--model", "M", "--adapter", "a0", "-o", "m", "--dtype", "fp8"], 2,
                        "'fp8' is not one of"),
    # lora-train
    "train --full over the base": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o", "M",
                                    "--full"], 1, f"Error: {M_IS}"),
    "train again into a run": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o",
                                "runs/voice"], 1, "runs/voice: holds checkpoints of an earlier run (step_0000002/); "
                               "add --resume to continue it, --overwrite to replace it"),
    "train over its adapter": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o", "a0",
                                "--adapter", "a0"], 1, "a0: the output folder is the --adapter folder"),
    "train another base's adapter": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o", "t",
                                      "--adapter", "other-base"], 1, "other-base: made for another model"),
    "train on a WAV manifest": (["lora-train", "--model", "M", "--manifest", "ref.wav", "-o", "t"], 1,
                                "Error: ref.wav: not a text manifest (a WAV/RIFF file)"),
    "train --lr 0": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o", "t", "--lr", "0"], 2,
                     "Invalid value for '--lr'"),
    "train --batch-size 0": (["lora-train", "--model", "M", "--manifest", "m", "-o", "t", "--batch-size", "0"], 2,
                             "Invalid value for '--batch-size'"),
    "train --max-grad-norm -1": (["lora-train", "--model", "M", "--manifest", "m", "-o", "t", "--max-grad-norm",
                                  "-1"], 2, "Invalid value for '--max-grad-norm'"),
    "train unknown target": (["lora-train", "--model", "M", "--manifest", "m", "-o", "t", "--targets", "wq"], 2,
                             "unknown target 'wq'"),
    "train target of another family": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o",
                                        "t", "--targets", "audio-ffn"], 2, "unknown target 'audio-ffn' for csm"),
    "train --full with --adapter": (["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o", "t",
                                     "--full", "--adapter", "a0"], 2, "--full trains the whole model"),
    # synth
    "synth over weights": (["synth", "--model", "M", "Hi.", "-o", "weights.safetensors"], 1,
                           "weights.safetensors: exists and is not a WAV file; add --overwrite to replace it"),
    "synth over its context": (["synth", "--model", "M", "Hi.", "-o", "ref.wav", "--context", "ref.wav",
                                "--context-text", "Hello."], 1, "ref.wav: the output file is a --context clip"),
    "synth into the user's files": (["synth", "--model", "M", "--out-dir", "precious"], 1,
                                    "precious: holds precious/notes.txt, which synth did not write"),
    "synth another base's adapter": (["synth", "--model", "M", "--adapter", "other-base", "Hi.", "-o", "o.wav"], 1,
                                     "other-base: made for another model"),
    "synth empty stdin": (["synth", "--model", "M", "--out-dir", "gen"], 1, "Error: <stdin>: no text to speak"),
    "synth bad temperature": (["synth", "--model", "M", "Hi.", "-o", "o.wav", "--temperature", "-1"], 2,
                              "Invalid value for '--temperature'"),
    "synth -o and stdin": (["synth", "--model", "M", "-o", "o.wav"], 2, "-o is for one TEXT"),
    # mkmanifest
    "mkmanifest empty stdin": (["mkmanifest", "-"], 1, "Error: <stdin>: no clips in the input (it is empty)"),
    "mkmanifest empty file": (["mkmanifest", "empty.jsonl"], 1, "Error: empty.jsonl: no clips in the input"),
    "mkmanifest a text file": (["mkmanifest", "precious/notes.txt"], 1, "precious/notes.txt: not a JSONL manifest"),
    # a single recording is an INPUT since --segment/--transcribe; without a transcript it is one rejected clip
    "mkmanifest a WAV": (["mkmanifest", "ref.wav"], 1, "Error: ref.wav: no usable clip (kept 0 clips (0.0 s); rejected 1: 1 no-text)"),
    "mkmanifest into its input": (["mkmanifest", "corpus/clips", "--out-dir", "corpus/clips"], 1,
                                  "corpus/clips: the output folder is the input"),
    "mkmanifest into the user's files": (["mkmanifest", "audio.jsonl", "--out-dir", "precious"], 1,
                                         "precious: holds precious/notes.txt, which mkmanifest did not write"),
    "mkmanifest rejects over weights": (["mkmanifest", "audio.jsonl", "--rejects", "weights.safetensors"], 1,
                                        "weights.safetensors: exists and is not a JSONL file"),
    "mkmanifest rejects over its input": (["mkmanifest", "audio.jsonl", "--rejects", "audio.jsonl"], 1,
                                          "audio.jsonl: the output file is the input"),
    "mkmanifest --sample-rate alone": (["mkmanifest", "audio.jsonl", "--sample-rate", "16000"], 2,
                                       "--sample-rate needs --out-dir"),
    # hf-fetch
    "hf-fetch into its dataset": (["hf-fetch", "audio", "--out-dir", "audio"], 1,
                                  "audio: the output folder is the dataset's folder"),
    "hf-fetch into the user's files": (["hf-fetch", "audio", "--out-dir", "precious"], 1,
                                       "precious: holds precious/notes.txt, which hf-fetch did not write"),
    "hf-fetch --limit 0": (["hf-fetch", "audio", "--out-dir", "x", "--limit", "0"], 2, "Invalid value for '--limit'"),
    # lora-inspect
    "inspect empty stdin": (["lora-inspect", "--json", "-"], 1, "Error: <stdin>: no adapters to report"),
    "inspect bad --top": (["lora-inspect", "a0", "--top", "x"], 2, "Invalid value for '--top'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_in_one_line_and_nothing_changes(home, case):
    argv, code, said = CASES[case]
    before = snapshot(home)
    result = run_here(*argv, cwd=home)
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0] == stderr.splitlines()[-1], stderr
    assert said in errors[0], stderr
    after = snapshot(home)
    assert {k: after.get(k) for k in before} == before  # every file there before, byte for byte
    for made in ("x", "t", "m", "gen", "o.wav"):  # nothing half-made either
        assert not (home / made).exists(), made


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has CUDA: --device cuda is not an error"
)
@pytest.mark.parametrize(
    "argv",
    [
        ["synth", "--model", "M", "Hi.", "-o", "o.wav", "--device", "cuda"],
        ["lora-train", "--model", "M", "--manifest", "corpus/train.jsonl", "-o", "t", "--device", "cuda"],
    ],
)
def test_a_missing_device_is_one_line_before_loading(home, argv):
    result = run_here(*argv, cwd=home)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert stderr == "Error: --device cuda: not available on this machine (torch sees no CUDA GPU)\n"
    assert not (home / "t").exists() and not (home / "o.wav").exists()


def invoke(main, *args):
    """In-process, for the steps around the subprocess under test (torch is loaded once)."""
    from click.testing import CliRunner

    return CliRunner().invoke(main.cli, list(map(str, args)))


def test_a_rerun_replaces_what_the_same_command_wrote(home, tmp_path):
    """lora-init over its own fresh adapter and lora-merge over its own output: replaced, no flag."""
    from voxlora.cli.lora_init import main as init
    from voxlora.cli.lora_merge import main as merge

    shutil.copytree(home / "a0", tmp_path / "a0")
    assert invoke(init, "--model", home / "M", "-o", tmp_path / "a0", "--seed", 5).exit_code == 0
    assert (tmp_path / "a0" / "adapter_model.safetensors").read_bytes() != (
        home / "a0" / "adapter_model.safetensors"
    ).read_bytes()
    assert invoke(merge, "--model", home / "M", "--adapter", home / "a0", "-o", tmp_path / "m").exit_code == 0
    result = run_here("lora-merge", "--model", home / "M", "--adapter", home / "a0", "-o", "m", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    (tmp_path / "m" / "notes.txt").write_text("mine")  # now a file lora-merge did not write
    result = run_here("lora-merge", "--model", home / "M", "--adapter", home / "a0", "-o", "m", cwd=tmp_path)
    assert (
        result.returncode == 1
        and "m: holds m/notes.txt, which lora-merge did not write" in result.stderr.decode()
    )
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_allow_other_base_applies_it_with_a_warning(home, tmp_path):
    from voxlora.adapter import base_fingerprint
    from voxlora.cli.lora_merge import main as merge

    result = invoke(merge, "--model", home / "M", "--adapter", home / "other-base", "-o", tmp_path / "m",
                    "--allow-other-base")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"{home / 'other-base'}: made for another model (base fingerprint sha256:00ff, {home / 'M'} has "
        f"{base_fingerprint(home / 'M')}); applied anyway (--allow-other-base)"
    ) in result.stderr


def test_overwrite_replaces_a_trained_run_only_when_the_new_one_is_written(home, tmp_path):
    from voxlora.cli.lora_train import main as train

    shutil.copytree(home / "runs", tmp_path / "runs")
    old = (tmp_path / "runs" / "voice" / "adapter_model.safetensors").read_bytes()
    result = invoke(train, "--model", home / "M", "--manifest", home / "corpus" / "train.jsonl", "-o",
                    tmp_path / "runs" / "voice", "--max-steps", 1, "--batch-size", 2, "--overwrite", "--seed", 3)  # fmt: skip
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "voice"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "loss.png", "metrics.jsonl", "voxlora-train.json",
        "voxlora.json",
    ]  # fmt: skip
    assert (run_dir / "adapter_model.safetensors").read_bytes() != old
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1


def test_closing_stdout_never_costs_the_adapter(home, tmp_path):
    """`lora-train … | head -1`: the run goes on, the adapter and every metrics line are written."""
    train = BIN / "lora-train"
    manifest = home / "corpus" / "train.jsonl"
    script = (
        f"'{train}' --model '{home / 'M'}' --manifest '{manifest}' -o '{tmp_path / 'run'}' "
        '--max-steps 6 --log-every 1 --batch-size 2 | head -1; echo "exit=${PIPESTATUS[0]}" >&2'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, env=ENV, timeout=300)
    stderr = result.stderr.decode()
    assert "exit=0" in stderr, stderr
    assert "stdout was closed by its reader; going on without it" in stderr
    assert json.loads(result.stdout.decode().splitlines()[0])["step"] == 1
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "adapter_config.json").is_file()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_permissions_follow_the_umask(home, tmp_path, umask, file_mode, dir_mode):
    result = run("lora-init", "--model", home / "M", "-o", tmp_path / "a", cwd=tmp_path, umask=umask)
    assert result.returncode == 0, result.stderr.decode()
    result = run("mkmanifest", home / "audio.jsonl", "--sample-rate", 16000, "--out-dir", tmp_path / "wav",
                 "--rejects", tmp_path / "rejects.jsonl", cwd=tmp_path, umask=umask)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    folders = [tmp_path / "a", tmp_path / "wav"]
    files = [p for f in folders for p in f.iterdir()] + [tmp_path / "rejects.jsonl"]
    assert len(files) >= 5
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(file_mode) for p in files}
    assert {oct(f.stat().st_mode & 0o777) for f in folders} == {oct(dir_mode)}
