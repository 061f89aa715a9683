"""lora-init: a fresh adapter (or the plan with --dry-run), one JSON record on stdout."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.adapter import read_adapter
from voxlora.cli.lora_init import main


def init(*args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


def test_writes_an_adapter_and_one_record(tiny_csm, tmp_path):
    result = init("--model", tiny_csm, "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["adapter"] == str(tmp_path / "a")
    assert record["modules"] == 12  # q, v in 4 backbone + 2 decoder layers
    # r * (out + in): backbone q (64, 64), v (32, 64) x 4 layers; decoder q (32, 32), v (16, 32) x 2
    assert record["params"] == 4 * 8 * (64 + 64 + 32 + 64) + 2 * 8 * (32 + 32 + 16 + 32) == 8960
    assert record["targets"] == ["q_proj", "v_proj"] and record["layers"] == {
        "backbone": "0-3",
        "decoder": "0-1",
    }
    assert 0 < record["share"] < 1
    assert "wrote" in result.stderr  # logs on stderr only
    adapter = read_adapter(tmp_path / "a")
    assert adapter.r == 8 and adapter.alpha == 16 and adapter.base_model == str(tiny_csm.resolve())
    assert all(not B.any() for _, B in adapter.lora.values())  # B zero: the model is unchanged
    assert adapter.meta["created_with"]["tool"] == "lora-init"


def test_dry_run_prints_the_plan_and_writes_nothing(tiny_csm, tmp_path):
    result = init("--model", tiny_csm, "--targets", "all-linear", "--layers", "2-3", "-r", "4", "--dry-run")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["modules"] == 14  # 7 linears x backbone layers 2, 3
    assert plan["layers"] == {"backbone": "2-3"}
    assert len(plan["module_paths"]) == 14 and not any(
        p.startswith("codec_model") for p in plan["module_paths"]
    )
    assert plan["settings"]["rank"] == 4
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, modules",
    [
        (["--targets", "q_proj,v_proj", "-r", "4"], 12),
        (["--targets", "attn", "-r", "8"], 24),
        (["--targets", "all-linear"], 42),
        (["--targets", "all-linear,codebook0_head,projection"], 44),
        (["--component", "decoder", "--targets", "mlp"], 6),
    ],
)
def test_plans_like_the_efficiency_tables(tiny_csm, args, modules):
    plan = json.loads(init("--model", tiny_csm, "--dry-run", *args).stdout)
    assert plan["modules"] == modules


def test_train_embeddings_start_as_the_base_tables(tiny_csm, tmp_path):
    result = init("--model", tiny_csm, "--train-embeddings", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    adapter = read_adapter(tmp_path / "a")
    base = load_file(tiny_csm / "model.safetensors")
    assert torch.equal(adapter.trained["embed_text_tokens.weight"], base["embed_text_tokens.weight"])
    assert torch.equal(  # tied: stored once, under the decoder's name
        adapter.trained["backbone_model.embed_tokens.embed_audio_tokens.weight"],
        base["depth_decoder.model.embed_tokens.weight"],
    )


def test_the_seed_decides_A(tiny_csm, tmp_path):
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        assert init("--model", tiny_csm, "--seed", seed, "-o", tmp_path / name).exit_code == 0
    weights = {n: (tmp_path / n / "adapter_model.safetensors").read_bytes() for n in "abc"}
    assert weights["a"] == weights["b"] != weights["c"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--targets", "wq"], "unknown target 'wq'"),
        (["--targets", "embed_text_tokens"], "use --train-embeddings"),
        (["--layers", "3-1"], "bad layer range"),
        (["--component", "codec"], "'codec' is not one of"),
        (["-r", "0"], "0 is not in the range"),
        ([], "give -o/--output ADAPTER (or --dry-run)"),
    ],
)
def test_usage_errors_exit_2(tiny_csm, args, message):
    result = init("--model", tiny_csm, *args)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "7"], "--layers 7: no such layer (backbone has 0-3, decoder has 0-1)"),
        (["--targets", "lm_head", "--component", "decoder"], "lm_head belongs to the backbone"),
    ],
)
def test_impossible_selections_exit_1(tiny_csm, tmp_path, args, message):
    result = init("--model", tiny_csm, "-o", tmp_path / "a", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "a").exists()


def test_a_missing_model_is_one_line(tmp_path):
    result = init("--model", tmp_path / "nope", "-o", tmp_path / "a")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {tmp_path / 'nope'}: no such folder, and not a Hugging Face repo id (owner/name)\n"
    )
