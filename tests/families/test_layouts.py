"""Families as data: detection from config.json, the tiny checkpoints' layouts, target selection."""

import json

import pytest
from voxlora import families, targets
from voxlora.errors import VoxloraError
from voxlora.lora_options import LoraSettings

from tests.fixtures.tiny_families import higgs_config, higgs_shapes

HIGGS, VOXCPM = families.get("higgs-audio-v2"), families.get("voxcpm")
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


def picked(model, **kwargs):
    return list(targets.select(targets.base_shapes(model), LoraSettings(**kwargs)).lora)


@pytest.mark.parametrize(
    "config, name",
    [
        ({"model_type": "csm"}, "csm"),
        ({"model_type": "higgs_audio_v2"}, "higgs-audio-v2"),
        ({"model_type": "higgs_audio"}, "higgs-audio-v2"),  # boson_multimodal's original config
        ({"architecture": "voxcpm", "lm_config": {}}, "voxcpm"),  # VoxCPM writes no model_type
    ],
)
def test_detect_from_config(config, name):
    assert families.detect(config).name == name


def test_unknown_model_type_asks_for_family(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(
        VoxloraError, match="model_type 'llama' is not a family voxlora knows .* pass --family"
    ):
        families.resolve(tmp_path)
    assert families.resolve(tmp_path, "higgs-audio-v2") is HIGGS


def test_guess_from_names(tiny_higgs, tiny_higgs_original, tiny_voxcpm, tiny_csm):
    for model, family in [(tiny_higgs, HIGGS), (tiny_higgs_original, HIGGS), (tiny_voxcpm, VOXCPM)]:
        assert families.guess(targets.base_shapes(model)) is family
    assert families.guess(targets.base_shapes(tiny_csm)) is families.CSM


def test_tiny_higgs_is_transformers_layout(tiny_higgs):
    """Names and shapes exactly as HiggsAudioV2ForConditionalGeneration creates them, and it loads."""
    from transformers import HiggsAudioV2Config, HiggsAudioV2ForConditionalGeneration

    config = {k: v for k, v in higgs_config().items() if k not in ("model_type", "architectures")}
    real = HiggsAudioV2ForConditionalGeneration(HiggsAudioV2Config(**config)).state_dict()
    assert {n: tuple(t.shape) for n, t in real.items()} == higgs_shapes(higgs_config())
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_higgs)
    assert model.config.num_codebooks == 8


def test_higgs_presets(tiny_higgs):
    def names(spec):
        return {m.split(".", 3)[3] for m in picked(tiny_higgs, targets=spec)}

    assert names(("attn",)) == {f"self_attn.{p}" for p in ATTN}
    assert names(("text-ffn",)) == {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    assert (
        names(("audio-ffn",))
        == names(("audio_mlp",))
        == {f"audio_mlp.{p}_proj" for p in ("gate", "up", "down")}
    )
    assert len(names(("all-linear",))) == 10
    assert names(("gate_proj",)) == {"mlp.gate_proj", "audio_mlp.gate_proj"}  # a shared leaf: both FFNs
    assert picked(tiny_higgs, targets=("q_proj", "audio_lm_head"))[-1] == "audio_lm_head"


def test_higgs_original_layout_and_its_audio_tower(tiny_higgs_original):
    modules = picked(tiny_higgs_original, targets=("q_proj", "audio_lm_head"))
    assert modules == [
        "layers.0.self_attn.q_proj",
        "layers.1.self_attn.q_proj",
        "audio_decoder_proj.audio_lm_head",
    ]
    assert not any(m.startswith("audio_tower.") for m in picked(tiny_higgs_original, targets=("all-linear",)))


def test_higgs_component_and_layers(tiny_higgs):
    assert picked(tiny_higgs, component="backbone", layers="1") == [
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.self_attn.v_proj",
    ]
    with pytest.raises(VoxloraError, match=r"unknown component 'decoder' \(use backbone or all\)"):
        picked(tiny_higgs, component="decoder")
    with pytest.raises(VoxloraError, match=r"--layers 5: no such layer \(backbone has 0-1\)"):
        picked(tiny_higgs, layers="5")


@pytest.mark.parametrize(
    "component, targets_, stacks",
    [
        ("lm", ("attn",), {"base_lm", "residual_lm"}),  # enable_lm
        ("dit", ("attn",), {"feat_decoder"}),  # enable_dit
        ("all", ("attn",), {"base_lm", "residual_lm", "feat_decoder"}),
        ("all", ("attn", "proj"), {"base_lm", "residual_lm", "feat_decoder", "enc_to_lm_proj",
                                   "lm_to_dit_proj", "res_to_dit_proj"}),  # + enable_proj
    ],
)  # fmt: skip
def test_voxcpm_switches(tiny_voxcpm, component, targets_, stacks):
    modules = picked(tiny_voxcpm, component=component, targets=targets_)
    assert {m.split(".")[0] for m in modules} == stacks
    assert not any(m.startswith("feat_encoder.") for m in modules)  # VoxCPM's LoRA never wraps LocEnc


def test_voxcpm_attention_shapes_and_order(tiny_voxcpm):
    selection = targets.select(targets.base_shapes(tiny_voxcpm), LoraSettings(targets=("attn", "proj")))
    lora = selection.lora
    assert lora["base_lm.layers.0.self_attn.k_proj"] == (2 * 16, 64)  # 2 KV heads x head_dim 16
    assert lora["feat_decoder.estimator.decoder.layers.0.self_attn.q_proj"] == (32, 32)
    assert lora["lm_to_dit_proj"] == (32, 64)
    order = list(lora)
    assert order[0] == "base_lm.layers.0.self_attn.q_proj" and order[-1] == "res_to_dit_proj"


def test_describe_in_family_terms(tiny_higgs):
    modules = picked(tiny_higgs, targets=("attn", "audio-ffn"), layers="1")
    assert targets.describe(modules) == {
        "targets": [*ATTN, "audio_mlp.gate_proj", "audio_mlp.up_proj", "audio_mlp.down_proj"],
        "layers": {"backbone": "1"},
        "other": [],
    }


@pytest.mark.parametrize(
    "spec, family, message",
    [
        ("text-ffn", families.CSM, "unknown target 'text-ffn' for csm"),
        ("codebook0_head", HIGGS, "unknown target 'codebook0_head' for higgs-audio-v2"),
        ("proj", HIGGS, "unknown target 'proj'"),
    ],
)
def test_targets_of_another_family_are_refused(spec, family, message):
    with pytest.raises(ValueError, match=message):
        targets.expand_targets(spec, family)


def test_train_embeddings_per_layout(tiny_higgs, tiny_higgs_original):
    for model, expected in [
        (tiny_higgs, {"model.embed_tokens.weight", "model.embed_audio_tokens.embed_audio_tokens.weight"}),
        (tiny_higgs_original, {"embed_tokens.weight", "audio_codebook_embeddings.weight"}),
    ]:
        shapes = targets.base_shapes(model)
        assert set(targets.select(shapes, LoraSettings(train_embeddings=True)).trained) == expected
