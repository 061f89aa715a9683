"""lora-train --compile and --attention on the command line: recorded in the run, refused in one
line where they cannot apply."""

import json

from click.testing import CliRunner
from voxlora.backends.torch import compile as compile_mod
from voxlora.cli.lora_train import main

from tests.trainkit import make_manifest


def train(*args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


def test_compile_and_attention_are_recorded_and_compiles_are_counted(tiny_csm, tmp_path, monkeypatch):
    monkeypatch.setattr(compile_mod, "BACKEND", "eager")  # dynamo's capture; inductor is for real runs
    manifest = make_manifest(tmp_path / "data", n=2)
    out = tmp_path / "run"
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 1, "--batch-size", 2,
                   "--compile", "--attention", "eager", "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    step = json.loads(result.stdout.splitlines()[0])
    assert step["step"] == 1 and step["compiles"] >= 1
    config = json.loads((out / "voxlora-train.json").read_text())["config"]
    assert config["compile"] is True and config["attention"] == "eager"


def test_compile_is_refused_on_mlx_and_for_other_families(tiny_csm, tmp_path):
    manifest = make_manifest(tmp_path / "data", n=1)
    mlx = train(
        "--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "a", "--compile", "--backend", "mlx"
    )
    assert mlx.exit_code == 2
    assert mlx.stderr.splitlines()[-1] == (
        "Error: --compile is torch.compile: for --backend torch (MLX compiles nothing here yet)"
    )
    bad = train("--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "b", "--attention", "fast")
    assert bad.exit_code == 2 and "'fast' is not one of 'sdpa', 'eager', 'flash_attention_2'" in bad.stderr


def test_higgs_refuses_compile_before_loading(tmp_path):
    from tests.fixtures.tiny_families import write_tiny_higgs

    higgs = write_tiny_higgs(tmp_path / "tiny-higgs")
    manifest = make_manifest(tmp_path / "data", n=1)
    result = train(
        "--model", higgs, "--manifest", manifest, "-o", tmp_path / "h", "--compile", "--backend", "torch"
    )
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1]
        == "Error: --compile: not available for higgs-audio-v2 models yet (CSM only)"
    )
