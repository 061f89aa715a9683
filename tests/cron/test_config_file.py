"""--config FILE: options from YAML, TOML or JSON, flags override, a run record replays its run."""

import json

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.cli.lora_train import main

from tests.trainkit import make_manifest


def train(*args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("data"), n=4)


def test_the_run_record_replays_the_run_bitwise(tiny_csm, manifest, tmp_path):
    first = tmp_path / "first"
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", first, "--max-steps", 3, "--rank", 4,
                   "--targets", "attn", "--dropout", 0.1, "--lr", 1e-2, "--max-grad-norm", 0, "--seed", 7,
                   "--batch-size", 2, "--lr-schedule", "linear")  # fmt: skip
    assert result.exit_code == 0, result.output
    again = tmp_path / "again"
    result = train("--config", first / "voxlora-train.json", "-o", again)
    assert result.exit_code == 0, result.output
    a, b = (load_file(d / "adapter_model.safetensors") for d in (first, again))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert any(a[k].abs().sum() > 0 for k in a if "lora_B" in k)  # it trained
    ca, cb = (json.loads((d / "voxlora-train.json").read_text())["config"] for d in (first, again))
    assert cb.pop("out") == str(again) and ca.pop("out") == str(first)
    assert ca == cb and ca["max_grad_norm"] is None and ca["lora"]["rank"] == 4


def test_every_option_from_a_file_and_flags_override_it(tiny_csm, manifest, tmp_path):
    import yaml
    from voxlora.config_file import read_config_file

    settings = {"model": str(tiny_csm), "manifest": str(manifest), "max_steps": 2, "lr": 0.02,
                "targets": ["q_proj", "k_proj"], "batch-size": 2, "log-every": 1, "rslora": True}  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "run.toml").write_text(
        "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in settings.items())
    )
    (tmp_path / "run.json").write_text(json.dumps(settings))
    assert all(read_config_file(tmp_path / f"run.{kind}") == settings for kind in ("yaml", "toml", "json"))
    out = tmp_path / "out"
    result = train("--config", tmp_path / "run.toml", "-o", out, "--lr", 0.03)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "voxlora-train.json").read_text())["config"]
    assert config["lr"] == 0.03  # the flag
    assert config["max_steps"] == 2 and config["batch_size"] == 2 and config["log_every"] == 1  # the file
    assert config["lora"]["targets"] == ["q_proj", "k_proj"] and config["lora"]["rslora"] is True


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"max_step": 3}', "run.json: unknown key 'max_step' (there is no --max-step option)"),
        ('{"lr": "fast"}', "run.json: 'lr' must be a number, got 'fast'"),
        ('{"max_steps": 2.5}', "run.json: 'max_steps' must be an integer, got 2.5"),
        ('{"resume": "yes"}', "run.json: 'resume' must be true or false, got 'yes'"),
        ('{"optimizer": "lion"}', "run.json: 'optimizer' must be one of adamw, adam, sgd, got 'lion'"),
        ('{"seed": -1}', "run.json: 'seed': -1 is not in the range x>=0."),
        ('{"lora": {"rank": 4, "rnk": 2}}', "run.json: unknown key 'lora.rnk' (not a LoRA option)"),
        ('[1, 2]', "run.json: must hold a mapping of option names to values, not a list"),
        ('{"lr": 1,\n', "run.json:2: invalid JSON (Expecting property name enclosed in double quotes)"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_the_key(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.json").write_text(text)
    result = train("--config", "run.json", "--model", "m", "--manifest", "t.jsonl", "-o", "out")
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_yaml_errors_name_the_line(tmp_path):
    (tmp_path / "run.yaml").write_text("model: m\nlr: [1\n")
    result = train("--config", tmp_path / "run.yaml")
    assert result.exit_code == 1 and f"Error: {tmp_path / 'run.yaml'}:3: invalid YAML" in result.output


def test_synth_takes_a_config_file_too(tmp_path):
    from voxlora.cli.synth import main as synth

    (tmp_path / "s.toml").write_text('temperature = "hot"\n')
    result = CliRunner().invoke(synth.cli, ["--config", str(tmp_path / "s.toml"), "hi", "-o", "x.wav"])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 's.toml'}: 'temperature' must be a number, got 'hot'\n"


def test_lora_eval_takes_a_config_file_too(tmp_path):
    from voxlora.cli.lora_eval import main as lora_eval

    (tmp_path / "e.yaml").write_text("limti: 3\n")
    result = CliRunner().invoke(lora_eval.cli, ["--config", str(tmp_path / "e.yaml"), "-"])
    assert result.exit_code == 1
    assert (
        result.output == f"Error: {tmp_path / 'e.yaml'}: unknown key 'limti' (there is no --limti option)\n"
    )
    # a value from the file reaches the command: --model without --manifest is its usage error
    (tmp_path / "e.yaml").write_text("model: some/model\nlimit: 2\n")
    result = CliRunner().invoke(lora_eval.cli, ["--config", str(tmp_path / "e.yaml")])
    assert result.exit_code == 2 and "--model and --manifest go together" in result.output
