"""lora-train --dry-run: the estimated peak memory from headers and manifest, nothing loaded or written."""

import json

import pytest
from click.testing import CliRunner
from voxlora.cli import lora_train
from voxlora.train import memory

from tests.trainkit import make_manifest


def dry_run(*args):
    return CliRunner().invoke(lora_train.cli, ["--dry-run", *map(str, args)])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("data"), n=3, seconds=0.4)


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_dry_run_prints_the_estimate_and_writes_nothing(tiny_csm, manifest, tmp_path, backend):
    out = tmp_path / "run"
    result = dry_run("--model", tiny_csm, "--manifest", manifest, "-o", out, "--backend", backend)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["dry_run"] is True and record["backend"] == backend and record["clips"] == 3
    assert record["longest_s"] == pytest.approx(0.6, abs=0.01)  # clips of 0.4, 0.5 and 0.6 s
    parts = record["estimate_MiB"]
    assert set(parts) == {"weights", "trained", "activations", "logits", "runtime"}
    assert record["estimated_peak_GiB"] == pytest.approx(sum(parts.values()) / 1024, abs=0.01)
    assert not out.exists()


def test_estimate_grows_with_batch_and_precision(tiny_csm, manifest, tmp_path):
    def peak(*extra):
        result = dry_run("--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "r", *extra)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    small, big = peak("--batch-size", "1"), peak("--batch-size", "8")
    assert big["estimate_MiB"]["activations"] > small["estimate_MiB"]["activations"]
    fp32, bf16 = peak("--dtype", "fp32"), peak("--dtype", "bf16")
    assert bf16["estimate_MiB"]["weights"] < fp32["estimate_MiB"]["weights"]
    r16 = peak("-r", "16")
    assert r16["trained_params"] == 2 * peak("-r", "8")["trained_params"]


def test_estimate_formula_by_hand():
    """One layer of width 4, 2 heads, batch 1, 10 positions, bf16: every part as the docstring sums."""
    config = {
        "num_hidden_layers": 1, "hidden_size": 4, "num_attention_heads": 2, "num_codebooks": 2, "vocab_size": 5,
        "depth_decoder_config": {"num_hidden_layers": 1, "hidden_size": 2, "num_attention_heads": 1},
    }  # fmt: skip
    shapes = {"a.weight": (10, 10), "codec_model.x": (5,)}
    est = memory.csm_estimate(
        config, shapes, 6, dtype="bf16", batch=1, positions=10, frames=4, decoder_fraction=0.5
    )
    assert est["weights"] == 100 * 2 + 5 * 4
    assert est["trained"] == 6 * 16
    assert est["activations"] == int(
        10 * 1 * 4 * (34 + 5 * 2 * 10 / 4) + 2 * 2 * 1 * 2 * (34 + 5 * 1 * 2 / 2)
    )
    assert est["logits"] == (4 * 5 + 2 * 1 * 5) * 8
    assert est["total"] == sum(v for k, v in est.items() if k != "total")
