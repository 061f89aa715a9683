"""The adapter half of the bad-input corpus through every command that reads adapters: a clear
one-line error naming the file, exit 1, no traceback, and a pickle is never unpickled."""

import json

import pytest
from click.testing import CliRunner

from tests.robust.badinput import make_bad_adapters, pickle_bomb

SAID = {
    "other-base": "{path}: 24 ",  # "... keys do not fit ...", then every key with both shapes
    "truncated": "{path}/adapter_model.safetensors: not a readable safetensors file (Error while "
    "deserializing header: incomplete metadata, file not fully covered)",
    "missing-fields": "{path}/adapter_config.json: peft_type is None; only LORA adapters are read",
    "pickle-as-safetensors": "{path}/adapter_model.safetensors: not a readable safetensors file "
    "(Error while deserializing header: header too large)",
    "pickle-as-bin": "{path}/adapter_model.bin: pickle weights are not read (they can run code); "
    "save the adapter as safetensors",
}


@pytest.fixture(scope="module")
def adapters(tiny_csm, tmp_path_factory):
    return make_bad_adapters(tmp_path_factory.mktemp("bad-adapters"), tiny_csm)


def commands(model, adapter, out):
    from voxlora.cli.lora_inspect import main as inspect
    from voxlora.cli.lora_merge import main as merge
    from voxlora.cli.lora_train import main as train
    from voxlora.cli.synth import main as synth

    return {
        "lora-inspect": (inspect, [adapter, "--model", model]),
        "lora-merge": (merge, ["--model", model, "--adapter", adapter, "-o", out / "merged"]),
        "synth": (synth, ["--model", model, "--adapter", adapter, "Hi.", "-o", out / "x.wav", "--max-seconds", 0.2]),
        "lora-train": (train, ["--model", model, "--manifest", out / "none.jsonl", "-o", out / "run", "--adapter", adapter]),
    }  # fmt: skip


def test_the_pickle_would_run_code(tmp_path):
    import pickle

    pickle.loads(pickle_bomb(tmp_path / "proof"))
    assert (tmp_path / "proof").exists()  # so its absence below means nothing unpickled it


@pytest.mark.parametrize("command", ["lora-inspect", "lora-merge", "synth", "lora-train"])
@pytest.mark.parametrize("case", sorted(SAID))
def test_a_bad_adapter_is_one_line_and_exit_1(tiny_csm, adapters, tmp_path, command, case):
    from tests.trainkit import make_manifest

    make_manifest(tmp_path, n=2, name="none.jsonl")
    cli, args = commands(tiny_csm, adapters[case], tmp_path)[command]
    result = CliRunner().invoke(cli.cli, list(map(str, args)))
    assert result.exit_code == 1, result.output
    expected = "Error: " + SAID[case].format(path=adapters[case])
    if (
        command != "lora-inspect" and case == "other-base"
    ):  # what applies adapters checks the fingerprint first
        expected = (
            f"Error: {adapters[case]}: made for another model (base fingerprint sha256:00000000deadbeef"
        )
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith(expected), result.stderr
    assert case != "other-base" or command != "lora-inspect" or "keys do not fit" in errors[0]
    assert result.stderr.splitlines()[-1] == errors[0]
    assert "Traceback" not in result.output
    assert not (adapters["good"].parent / "UNPICKLED").exists()


@pytest.mark.parametrize("command", ["lora-inspect", "lora-merge", "lora-train"])
def test_unknown_config_fields_are_named_in_a_warning_and_ignored(tiny_csm, adapters, tmp_path, command):
    from tests.trainkit import make_manifest

    make_manifest(tmp_path, n=2, name="none.jsonl")
    cli, args = commands(tiny_csm, adapters["unknown-field"], tmp_path)[command]
    result = CliRunner().invoke(
        cli.cli, [*map(str, args), *(["--max-steps", "1"] if command == "lora-train" else [])]
    )
    assert result.exit_code == 0, result.output
    assert (
        f"{adapters['unknown-field']}/adapter_config.json: ignoring fields this peft does not know: shiny_new_option"
        in result.stderr
    )


def test_lora_inspect_reports_every_good_adapter_beside_bad_ones(adapters):
    from voxlora.cli.lora_inspect import main

    names = ["good", "truncated", "pickle-as-bin", "good"]
    stdin = "".join(json.dumps({"adapter": str(adapters[n])}) + "\n" for n in names)
    result = CliRunner().invoke(main.cli, ["--json", "-"], input=stdin)
    assert result.exit_code == 1
    assert [json.loads(x)["adapter"] for x in result.stdout.splitlines()] == [str(adapters["good"])] * 2
    errors = [x for x in result.stderr.splitlines() if x.startswith("Error: ") and "not reported" not in x]
    assert errors == [
        "Error: " + SAID["truncated"].format(path=adapters["truncated"]),
        "Error: " + SAID["pickle-as-bin"].format(path=adapters["pickle-as-bin"]),
    ]
    assert "Traceback" not in result.output
    assert not (adapters["good"].parent / "UNPICKLED").exists()
