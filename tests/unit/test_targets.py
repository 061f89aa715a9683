"""Target selection on the tiny CSM's tensor names (voxlora.targets): each preset, component and layer list."""

import pytest
from voxlora import targets
from voxlora.errors import VoxloraError
from voxlora.lora_options import LoraSettings

# tiny CSM: 4 backbone layers, 2 depth-decoder layers (CSM-1B: 16 and 4)
BACKBONE, DECODER = 4, 2
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def shapes(tiny_csm):
    return targets.base_shapes(tiny_csm)


def paths(names, backbone=range(BACKBONE), decoder=range(DECODER)):
    def one(prefix, i, name):
        return f"{prefix}.{i}.{'self_attn' if name in ATTN else 'mlp'}.{name}"

    return {one("backbone_model.layers", i, n) for i in backbone for n in names} | {
        one("depth_decoder.model.layers", i, n) for i in decoder for n in names
    }


def picked(shapes, **kwargs):
    return set(targets.select(shapes, LoraSettings(**kwargs)).lora)


def test_default_is_q_and_v_in_both_transformers(shapes):
    assert picked(shapes) == paths(["q_proj", "v_proj"])


@pytest.mark.parametrize(
    "spec, names",
    [
        (("attn",), ATTN),
        (("mlp",), MLP),
        (("all-linear",), ATTN + MLP),
        (("k_proj", "o_proj"), ("k_proj", "o_proj")),
    ],
)
def test_presets(shapes, spec, names):
    assert picked(shapes, targets=spec) == paths(names)


def test_all_linear_leaves_heads_out_unless_named(shapes):
    assert "lm_head" not in picked(shapes, targets=("all-linear",))
    heads = picked(shapes, targets=("all-linear", "codebook0_head", "projection"))
    assert heads - paths(ATTN + MLP) == {"lm_head", "depth_decoder.model.inputs_embeds_projector"}
    assert picked(shapes, targets=("lm_head",)) == {"lm_head"}


@pytest.mark.parametrize(
    "component, backbone, decoder", [("backbone", range(BACKBONE), []), ("decoder", [], range(DECODER))]
)
def test_component(shapes, component, backbone, decoder):
    assert picked(shapes, targets=("attn",), component=component) == paths(ATTN, backbone, decoder)


@pytest.mark.parametrize(
    "layers, backbone, decoder",
    [("1-2", [1, 2], [1]), ("0,3", [0, 3], [0]), ("0-1,3", [0, 1, 3], [0, 1]), ("3", [3], [])],
)
def test_layers(shapes, layers, backbone, decoder):
    assert picked(shapes, layers=layers) == paths(["q_proj", "v_proj"], backbone, decoder)


def test_layers_beyond_every_stack_are_refused(shapes):
    with pytest.raises(
        VoxloraError, match=r"--layers 4-5: no such layer \(backbone has 0-3, decoder has 0-1\)"
    ):
        targets.select(shapes, LoraSettings(layers="2-5"))
    with pytest.raises(VoxloraError, match="--layers 2: no such layer"):
        targets.select(shapes, LoraSettings(layers="2", component="decoder"))


@pytest.mark.parametrize("spec", [("q_proj",), ("all-linear",), ("attn", "mlp")])
@pytest.mark.parametrize("component", ["all", "backbone", "decoder"])
def test_the_codec_is_never_targeted(shapes, spec, component):
    assert any(n.startswith("codec_model.") and ".q_proj." in n for n in shapes)  # it has q_proj too
    assert not any(p.startswith("codec_model.") for p in picked(shapes, targets=spec, component=component))


def test_shapes_are_out_in(shapes):
    selection = targets.select(shapes, LoraSettings(targets=("q_proj", "down_proj", "projection")))
    assert selection.lora["backbone_model.layers.0.self_attn.q_proj"] == (64, 64)
    assert selection.lora["backbone_model.layers.0.mlp.down_proj"] == (64, 128)
    assert selection.lora["depth_decoder.model.inputs_embeds_projector"] == (32, 64)
    assert selection.lora_params(8) == sum(8 * (o + i) for o, i in selection.lora.values())


def test_modules_come_in_model_order(shapes):
    selection = list(targets.select(shapes, LoraSettings(targets=("attn", "lm_head", "projection"))).lora)
    assert selection[:4] == [f"backbone_model.layers.0.self_attn.{n}" for n in ATTN]
    assert selection.index("lm_head") < selection.index("depth_decoder.model.inputs_embeds_projector")
    assert selection[-1] == "depth_decoder.model.layers.1.self_attn.o_proj"


def test_train_embeddings_trains_the_backbone_inputs(shapes):
    selection = targets.select(shapes, LoraSettings(train_embeddings=True))
    assert selection.trained == {
        "embed_text_tokens.weight": (264, 64),
        "backbone_model.embed_tokens.embed_audio_tokens.weight": (32 * 67, 64),
    }


def test_tied_audio_embedding_is_listed_under_both_names(tiny_csm):
    from voxlora.models.csm import weight_shapes

    stored = weight_shapes(tiny_csm)
    assert (
        "backbone_model.embed_tokens.embed_audio_tokens.weight" not in stored
    )  # stored once, as the decoder's
    shapes = targets.with_tied(stored)
    assert (
        shapes["backbone_model.embed_tokens.embed_audio_tokens.weight"]
        == stored["depth_decoder.model.embed_tokens.weight"]
    )


def test_head_outside_the_component_is_refused(shapes):
    with pytest.raises(
        VoxloraError, match="lm_head belongs to the backbone, which --component decoder leaves out"
    ):
        targets.select(shapes, LoraSettings(targets=("lm_head",), component="decoder"))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("q_proj,wq", "unknown target 'wq'"),
        ("embed_text_tokens", "embeddings are not LoRA targets; use --train-embeddings"),
        ("", "no targets given"),
    ],
)
def test_bad_targets(spec, message):
    with pytest.raises(ValueError, match=message):
        targets.expand_targets(spec)


@pytest.mark.parametrize("spec", ["8-", "a", "3-1", "1,,2"])
def test_bad_layer_lists(spec):
    with pytest.raises(ValueError):
        targets.parse_layers(spec)


@pytest.mark.parametrize("spec, layers", [("0-3,8", {0, 1, 2, 3, 8}), ("5", {5}), (" 1 - 2 , 4", {1, 2, 4})])
def test_layer_lists_round_trip(spec, layers):
    assert targets.parse_layers(spec) == layers
    assert targets.parse_layers(targets.format_layers(layers)) == layers


def test_describe_groups_by_component():
    modules = paths(["q_proj"], [8, 9, 10, 12], [0]) | {"lm_head", "model.layers.0.q_proj"}
    assert targets.describe(modules) == {
        "targets": ["q_proj", "lm_head"],
        "layers": {"backbone": "8-10,12", "decoder": "0"},
        "other": ["model.layers.0.q_proj"],
    }
