"""The cron line that works every night: --resume with nothing to resume starts fresh; the adapter
remembers its speaker, so synth needs no --speaker (and takes a name)."""

import json

from click.testing import CliRunner
from voxlora.cli.lora_train import main as lora_train
from voxlora.cli.synth import main as synth

from tests.datagen import write_jsonl
from tests.trainkit import make_manifest


def test_first_night_resume_starts_fresh_and_the_adapter_remembers_its_speaker(tiny_csm, tmp_path):
    manifest = make_manifest(tmp_path, n=3)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    write_jsonl(manifest, [{**r, "speaker": 1, "speaker_name": "alice"} for r in records])
    out = tmp_path / "run"
    result = CliRunner().invoke(lora_train.cli, list(map(str, [
        "--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 2, "--resume"])))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"lora-train: --resume: no checkpoint in {out} yet; starting a fresh run"
        in result.stderr.splitlines()
    )
    meta = json.loads((out / "voxlora.json").read_text())
    assert meta["speakers"] == [{"id": 1, "name": "alice"}]

    def speak(*args):
        r = CliRunner().invoke(synth.cli, ["--model", str(tiny_csm), "--adapter", str(out), "--max-seconds", "0.3",
                                           "--temperature", "0", *args])  # fmt: skip
        return r.exit_code, [json.loads(x) for x in r.stdout.splitlines()] or r.output

    assert speak("Hi.", "-o", str(tmp_path / "a.wav"))[1][0]["speaker"] == 1  # the adapter's one speaker
    assert speak("Hi.", "-o", str(tmp_path / "b.wav"), "--speaker", "alice")[1][0]["speaker"] == 1
    assert speak("Hi.", "-o", str(tmp_path / "c.wav"), "--speaker", "0")[1][0]["speaker"] == 0
    assert speak("Hi.", "-o", str(tmp_path / "d.wav"), "--speaker", "bob") == (
        1, "Error: --speaker bob: no such speaker in the adapter; it knows alice (1)\n")  # fmt: skip


def test_speakers_from_records_and_a_names_file():
    from voxlora.adapter_speakers import pick_speaker, trained_speakers

    records = [{"speaker": 2}, {"speaker": 0, "speaker_name": "x"}, {}, {"speaker": 2}]
    assert trained_speakers(records, 5, {"bea": 2}) == [
        {"id": 0, "name": "x"},
        {"id": 2, "name": "bea"},
        {"id": 5},
    ]
    assert pick_speaker(None, {"speakers": [{"id": 0}, {"id": 2}]}) == 0  # two voices: CSM's default
    assert pick_speaker(None, {}) == 0 and pick_speaker(7, {}) == 7
