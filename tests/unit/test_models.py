"""The tiny-model writer and the CSM loader."""

import json

import pytest
import torch
from voxlora.demo_model import write_tiny_csm
from voxlora.errors import VoxloraError
from voxlora.models.csm import load_csm, model_dir, read_config, weight_shapes


def test_tiny_csm_has_the_layout_of_sesame_csm_1b(tiny_csm):
    names = {p.name for p in tiny_csm.iterdir()}
    for expected in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ):
        assert expected in names
    config = json.loads((tiny_csm / "config.json").read_text())
    assert config["model_type"] == "csm"
    assert config["num_codebooks"] == 32
    assert config["codec_config"]["model_type"] == "mimi"


def test_tiny_csm_loads_through_from_pretrained(tiny_csm):
    bundle = load_csm(tiny_csm)
    n_params = sum(p.numel() for p in bundle.model.parameters())
    assert 100_000 < n_params < 2_000_000
    assert bundle.sample_rate == 24000
    ids = bundle.tokenizer("[0]hi").input_ids
    assert ids[0] == bundle.config.bos_token_id and ids[-1] == bundle.tokenizer.eos_token_id


def test_tiny_csm_is_deterministic(tmp_path):
    a = write_tiny_csm(tmp_path / "a", seed=3)
    b = write_tiny_csm(tmp_path / "b", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_mimi_frames_are_12_5_hz(tiny_csm):
    bundle = load_csm(tiny_csm)
    with torch.no_grad():
        codes = bundle.codec.encode(torch.zeros(1, 1, 24000)).audio_codes  # (B, K, T)
    assert codes.shape == (1, 32, 13)  # ceil(24000 / 1920)


def test_weight_shapes_reads_headers_only(tiny_csm):
    shapes = weight_shapes(tiny_csm)
    assert shapes["backbone_model.layers.0.self_attn.q_proj.weight"] == (64, 64)
    assert any(name.startswith("codec_model.") for name in shapes)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "no such folder"),
        (lambda p: p, "no config.json"),
        (lambda p: (p / "c.json").write_text("{}") and p / "c.json", "a file"),
    ],
)
def test_bad_model_paths_give_one_line(tmp_path, make, message):
    with pytest.raises(VoxloraError, match=message):
        model_dir(make(tmp_path))


def test_a_non_csm_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(VoxloraError, match="not a CSM model"):
        read_config(tmp_path)


def test_unreachable_hub_repo_fails_at_once():
    with pytest.raises(VoxloraError, match="cannot be reached"):
        model_dir("sesame/csm-1b")
