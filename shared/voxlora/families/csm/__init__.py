"""Sesame CSM-1B (transformers' ``CsmForConditionalGeneration``, model_type ``csm``) as a family.

Two Llama-style transformers and a codec::

    backbone_model.layers.{i}.self_attn.{q,k,v,o}_proj    backbone (16 layers in CSM-1B)
    backbone_model.layers.{i}.mlp.{gate,up,down}_proj
    depth_decoder.model.layers.{i}....                      depth decoder (4 layers), same names
    lm_head                                                 the backbone's head (Sesame: codebook0_head)
    depth_decoder.model.inputs_embeds_projector             backbone -> decoder width (Sesame: projection)
    codec_model.*                                           the Mimi codec: never targeted, though its
                                                            own transformer also has q_proj, k_proj, ...
"""

from voxlora.families.layout import Family

ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
PROJECTOR = "depth_decoder.model.inputs_embeds_projector"

FAMILY = Family(
    name="csm",
    model_types=("csm",),
    stacks={"backbone": ("backbone_model.layers",), "decoder": ("depth_decoder.model.layers",)},
    linears=ATTN + MLP,
    presets={
        "attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
        "mlp": ("gate_proj", "up_proj", "down_proj"),
        "all-linear": ("attn", "mlp"),  # the layers' linears only: heads only when named
    },
    components={"backbone": ("backbone",), "decoder": ("decoder",)},
    heads={"lm_head": ("lm_head",), PROJECTOR: (PROJECTOR,)},
    head_aliases={"codebook0_head": "lm_head", "projection": PROJECTOR, "inputs_embeds_projector": PROJECTOR},
    head_component={"lm_head": "backbone", PROJECTOR: "decoder"},
    order=("backbone", "lm_head", PROJECTOR, "decoder"),
    # what the backbone reads, trained directly by --train-embeddings (peft's modules_to_save)
    embeddings=(("embed_text_tokens",), ("backbone_model.embed_tokens.embed_audio_tokens",)),
    # With tie_codebooks_embeddings (CSM-1B's default) the backbone's audio embedding *is* the depth
    # decoder's input embedding, and checkpoints store it once, under the decoder's name.
    tied={"backbone_model.embed_tokens.embed_audio_tokens.weight": "depth_decoder.model.embed_tokens.weight"},
    codec=("codec_model.",),
    description="Sesame CSM-1B: backbone + depth decoder; the Mimi codec (codec_model.*) is never targeted",
)
