"""Higgs Audio v2 (Boson AI) as a family: a Llama-3.2-3B backbone whose layers have a DualFFN.

Every layer has one attention and two FFNs: ``mlp`` for text tokens and ``audio_mlp`` for audio
tokens (8 codebooks, summed into one embedding per frame)::

    model.layers.{i}.self_attn.{q,k,v,o}_proj       shared attention (28 layers in the 3B model)
    model.layers.{i}.mlp.{gate,up,down}_proj         text FFN
    model.layers.{i}.audio_mlp.{gate,up,down}_proj   audio FFN (the DualFFN's audio path)
    model.embed_tokens, model.embed_audio_tokens.embed_audio_tokens
    audio_lm_head (8 * codebook_size outputs), text_lm_head (optional)

That is transformers' layout (model_type ``higgs_audio_v2``, HiggsAudioV2ForConditionalGeneration).
The original boson_multimodal checkpoints (model_type ``higgs_audio``) name the same modules
without the ``model.`` prefix (``layers.{i}.audio_mlp.gate_proj``), keep the heads under
``audio_decoder_proj.`` and the audio embedding as ``audio_codebook_embeddings``; both layouts are
listed, whichever a checkpoint has is used. The audio tokenizer (the codec, HiggsAudioV2TokenizerModel)
is a separate model that the processor loads, never part of these weights; an original checkpoint's
Whisper audio tower (``audio_tower.*``, ``audio_encoder_proj.*``) is never targeted either.
"""

from voxlora.families.layout import Family

ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
TEXT_FFN = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
AUDIO_FFN = ("audio_mlp.gate_proj", "audio_mlp.up_proj", "audio_mlp.down_proj")

FAMILY = Family(
    name="higgs-audio-v2",
    model_types=("higgs_audio_v2", "higgs_audio"),
    stacks={"backbone": ("model.layers", "layers")},
    linears=ATTN + TEXT_FFN + AUDIO_FFN,
    presets={
        "attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
        "text-ffn": TEXT_FFN,
        "audio-ffn": AUDIO_FFN,
        "all-linear": ("attn", "text-ffn", "audio-ffn"),  # the layers' linears only: heads when named
    },
    components={"backbone": ("backbone",)},
    heads={
        "audio_lm_head": ("audio_lm_head", "audio_decoder_proj.audio_lm_head"),
        "text_lm_head": ("text_lm_head", "audio_decoder_proj.text_lm_head"),
    },
    head_component={"audio_lm_head": "backbone", "text_lm_head": "backbone"},
    order=("backbone", "audio_lm_head", "text_lm_head"),
    embeddings=(
        ("model.embed_tokens", "embed_tokens"),
        ("model.embed_audio_tokens.embed_audio_tokens", "audio_codebook_embeddings"),
    ),
    codec=("audio_tokenizer.", "audio_tower.", "audio_encoder_proj."),
    description="Higgs Audio v2: Llama backbone with DualFFN (mlp text, audio_mlp audio); "
    "the audio tokenizer is a separate model, never targeted",
)
