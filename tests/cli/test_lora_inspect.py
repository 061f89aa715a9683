"""lora-inspect: settings, size, update norms, and the check against a base model."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from voxlora import lora
from voxlora.adapter import write_adapter
from voxlora.cli.lora_inspect import main
from voxlora.lora_options import LoraSettings
from voxlora.peft_bridge import new_adapter_for


def inspect(*args, input=None):
    return CliRunner().invoke(main.cli, list(map(str, args)), input=input)


@pytest.fixture
def trained(tiny_csm, tmp_path):
    """A q,v adapter whose backbone layer-2 v_proj moved far more than anything else."""
    adapter = new_adapter_for(tiny_csm, LoraSettings())
    gen = torch.Generator().manual_seed(0)
    for module, (_, B) in adapter.lora.items():
        B.copy_(
            torch.randn(B.shape, generator=gen)
            * (1.0 if module == "backbone_model.layers.2.self_attn.v_proj" else 0.01)
        )
    return write_adapter(adapter, tmp_path / "trained")


def test_json_report(trained, tiny_csm):
    result = inspect(trained, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "voxlora" and report["base_model"] == str(tiny_csm.resolve())
    assert (report["r"], report["alpha"], report["scaling"], report["rslora"]) == (8, 16.0, 2.0, False)
    assert report["targets"] == ["q_proj", "v_proj"] and report["layers"] == {
        "backbone": "0-3",
        "decoder": "0-1",
    }
    assert report["modules"] == 12 and report["params"] == 8960
    assert report["base_params"] > 0 and report["share"] == round(8960 / report["base_params"], 6)
    norms = report["norms"]
    assert norms[0]["module"] == "backbone_model.layers.2.self_attn.v_proj"
    assert [n["norm"] for n in norms] == sorted((n["norm"] for n in norms), reverse=True)
    assert "problems" not in report  # nothing checked without --model


def test_a_fresh_adapter_has_learned_nothing(tiny_csm, tmp_path):
    write_adapter(new_adapter_for(tiny_csm, LoraSettings(targets=("attn",))), tmp_path / "a")
    report = json.loads(inspect(tmp_path / "a", "--json", "--top", "100").stdout)
    assert len(report["norms"]) == 24 and all(n["norm"] == 0 for n in report["norms"])


def test_readable_report(trained, tiny_csm):
    result = inspect(trained, "--model", tiny_csm, "--top", "3")
    assert result.exit_code == 0, result.output
    assert "rank         8   alpha 16   scaling 2" in result.stdout
    assert "targets      q_proj, v_proj" in result.stdout
    assert f"check        {tiny_csm}: fits" in result.stdout
    assert result.stdout.splitlines()[-3].endswith("backbone_model.layers.2.self_attn.v_proj")


def test_fits_its_base(trained, tiny_csm, other_tiny_csm):
    report = json.loads(inspect(trained, "--model", tiny_csm, "--json").stdout)
    assert report["problems"] == [] and report["fingerprint_match"] is True
    # same architecture, other weights: it fits (the fingerprint is of names and shapes)
    assert inspect(trained, "--model", other_tiny_csm).exit_code == 0


def test_flags_a_shape_mismatched_adapter(tiny_csm, tmp_path):
    adapter = new_adapter_for(tiny_csm, LoraSettings())
    adapter.lora["backbone_model.layers.1.self_attn.q_proj"] = (torch.zeros(8, 48), torch.zeros(64, 8))
    write_adapter(adapter, tmp_path / "bad")
    result = inspect(tmp_path / "bad", "--model", tiny_csm, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)  # the report is still printed, then the error
    assert report["problems"] == [
        "backbone_model.layers.1.self_attn.q_proj: LoRA (64, 48) vs base (64, 64) (out, in)"
    ]
    assert result.stderr.startswith(f"Error: {tmp_path / 'bad'}: 1 keys do not fit {tiny_csm}: ")


def test_flags_an_adapter_for_another_model(tiny_csm, tmp_path):
    # a Llama-style peft adapter: its module paths do not exist in CSM
    folder = tmp_path / "llama"
    folder.mkdir()
    modules = [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    save_file(
        {
            f"base_model.model.{m}.lora_{x}.weight": torch.zeros((4, 64) if x == "A" else (64, 4))
            for m in modules
            for x in "AB"
        },
        folder / "adapter_model.safetensors",
    )
    config = {
        "peft_type": "LORA",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": "meta-llama/Llama-3.2-1B",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    result = inspect(folder, "--model", tiny_csm)
    assert result.exit_code == 1
    assert "4 keys do not fit" in result.stderr
    for m in modules:
        assert f"{m}: no such module in the base (would be skipped)" in result.stderr
    assert "(peft)" in result.stdout and "4 keys do not fit" in result.stdout


def test_reads_mlx_adapters(tiny_csm, tmp_path):
    folder = tmp_path / "mlx"
    folder.mkdir()
    A, B = torch.ones(4, 64), torch.ones(64, 4)
    lora_a, lora_b, _ = lora.to_mlx(A, B, 2.0)
    save_file(
        {
            "backbone_model.layers.0.self_attn.q_proj.lora_a": lora_a,
            "backbone_model.layers.0.self_attn.q_proj.lora_b": lora_b,
        },
        folder / "adapters.safetensors",
    )
    (folder / "adapter_config.json").write_text(
        json.dumps({"lora_parameters": {"rank": 4, "scale": 2.0, "dropout": 0.0}})
    )
    report = json.loads(inspect(folder, "--json", "--model", tiny_csm).stdout)
    assert report["format"] == "mlx" and report["scaling"] == 2.0 and report["problems"] == []
    assert report["norms"][0]["norm"] == pytest.approx(2.0 * 4 * 64)  # |2 * (all-4s 64x64)|_F


def test_adapters_from_stdin_records(trained):
    records = json.dumps({"adapter": str(trained), "modules": 12}) + "\n\n"
    result = inspect("-", "--json", input=records)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["adapter"] == str(trained)
    bad = inspect("-", input="not json\n")
    assert bad.exit_code == 1 and bad.stderr == 'Error: <stdin>:1: expected a JSON record with "adapter"\n'


def test_bad_stdin_lines_are_failures_and_the_good_adapters_still_reported(trained):
    records = b'not json\n{"adapter": "caf\xe9"}\n' + json.dumps({"adapter": str(trained)}).encode() + b"\n"
    result = inspect("-", "--json", input=records)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["adapter"] == str(trained)
    assert result.stderr == (
        'Error: <stdin>:1: expected a JSON record with "adapter"\n'
        "<stdin>:2: not UTF-8 (byte 0xe9 at column 17)\n"
    )


def test_not_an_adapter(tmp_path):
    result = inspect(tmp_path)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {tmp_path}: not an adapter folder (no adapter_model.safetensors or adapters.safetensors)\n"
    )
