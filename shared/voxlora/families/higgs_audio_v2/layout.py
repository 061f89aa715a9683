"""Boson's original Higgs Audio v2 layout <-> transformers' layout: tensor names and config.

Boson released ``bosonai/higgs-audio-v2-generation-3B-base`` for its own ``boson_multimodal`` code
(``model_type: higgs_audio``); transformers' ``HiggsAudioV2ForConditionalGeneration``
(``model_type: higgs_audio_v2``) names the same tensors differently. The mapping is the one
transformers' ``convert_higgs_audio_v2_to_hf.py`` applies, in order, on each name::

    audio_codebook_embeddings.*          -> model.embed_audio_tokens.embed_audio_tokens.*
    embed_tokens.* | layers.* | norm.*   -> model.embed_tokens.* | model.layers.* | model.norm.*
    audio_decoder_proj.audio_lm_head.*   -> audio_lm_head.*      (and text_lm_head likewise)

Before renaming, a ``PartiallyFrozen`` split (``embed_tokens.embedding_frozen`` +
``embedding_trainable``, ``…lm_head.linear_frozen`` + ``linear_trainable``) is concatenated back
into one tensor. Dropped on purpose: ``audio_codebook_weights`` and rotary buffers (recomputed), and
the Whisper audio-in tower (``audio_tower.*``, ``audio_encoder_proj.*``), which speech generation
never runs and transformers' model does not have. Any other name that maps nowhere is an error.

The config moves the Llama ``text_config`` up one level and renames the audio fields
(`config_from_original`); the architecture variants transformers cannot express (audio attention,
RQ transformer, DualFFN on only some layers…) are refused with one line, never half-loaded.
"""

import re

from voxlora.errors import VoxloraError

ORIGINAL_TO_HF = (
    (r"^audio_codebook_embeddings\.", "model.embed_audio_tokens.embed_audio_tokens."),
    (r"^(embed_tokens|layers|norm)\.", r"model.\1."),
    (r"^audio_decoder_proj\.", ""),
)
HF_TO_ORIGINAL = (
    (r"^model\.embed_audio_tokens\.embed_audio_tokens\.", "audio_codebook_embeddings."),
    (r"^model\.(embed_tokens|layers|norm)\.", r"\1."),
    (r"^(audio_lm_head|text_lm_head)\.", r"audio_decoder_proj.\1."),
)
DROPPED = ("audio_codebook_weights", "rotary_emb.inv_freq", "rotary_emb.original_inv_freq")
DROPPED_PREFIXES = ("audio_tower.", "audio_encoder_proj.")
SPLITS = {  # PartiallyFrozen modules: (frozen part, trainable part) -> one tensor
    "embed_tokens.weight": (
        "embed_tokens.embedding_frozen.weight",
        "embed_tokens.embedding_trainable.weight",
    ),
    "audio_decoder_proj.audio_lm_head.weight": (
        "audio_decoder_proj.audio_lm_head.linear_frozen.weight",
        "audio_decoder_proj.audio_lm_head.linear_trainable.weight",
    ),
    "audio_decoder_proj.text_lm_head.weight": (
        "audio_decoder_proj.text_lm_head.linear_frozen.weight",
        "audio_decoder_proj.text_lm_head.linear_trainable.weight",
    ),
}
# Llama fields of the original text_config that transformers' HiggsAudioV2Config holds at top level
TEXT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "attention_bias",
    "attention_dropout",
    "mlp_bias",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
)


def _rename(name: str, rules) -> str:
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name


def hf_name(original: str) -> str:
    """``layers.3.audio_mlp.up_proj.weight`` -> ``model.layers.3.audio_mlp.up_proj.weight``."""
    return _rename(original, ORIGINAL_TO_HF)


def original_name(hf: str) -> str:
    """The inverse of `hf_name` for every name transformers' model has."""
    return _rename(hf, HF_TO_ORIGINAL)


def to_transformers(state: dict) -> dict:
    """An original-layout state dict renamed for HiggsAudioV2ForConditionalGeneration (splits joined)."""
    import torch

    state = dict(state)
    for whole, (frozen, trainable) in SPLITS.items():
        if frozen in state and trainable in state:
            state[whole] = torch.cat([state.pop(frozen), state.pop(trainable)], dim=0)
    out = {}
    for name, tensor in state.items():
        if name.endswith(DROPPED) or name.startswith(DROPPED_PREFIXES):
            continue
        out[hf_name(name)] = tensor
    return out


def to_original(state: dict) -> dict:
    """A transformers-layout state dict in Boson's names (for tests and for exporting back)."""
    return {original_name(name): tensor for name, tensor in state.items()}


def _refuse(config: dict, source: str) -> None:
    text = config.get("text_config") or {}
    n = text.get("num_hidden_layers")
    checks = [
        (str(config.get("audio_adapter_type", "dual_ffn")).startswith("dual_ffn"), "audio_adapter_type"),
        (
            sorted(config.get("audio_dual_ffn_layers") or range(n or 0)) == list(range(n or 0)),
            "DualFFN on some layers only",
        ),
        (not config.get("use_audio_out_self_attention"), "use_audio_out_self_attention"),
        (not config.get("use_audio_out_embed_projector"), "use_audio_out_embed_projector"),
        (not config.get("use_rq_transformer"), "use_rq_transformer"),
        (config.get("use_delay_pattern", True), "use_delay_pattern false"),
        (not config.get("audio_decoder_proj_num_layers"), "audio_decoder_proj_num_layers"),
        (
            config.get("audio_ffn_hidden_size", text.get("hidden_size")) == text.get("hidden_size"),
            "audio_ffn_hidden_size",
        ),
        (
            config.get("audio_ffn_intermediate_size", text.get("intermediate_size"))
            == text.get("intermediate_size"),
            "audio_ffn_intermediate_size",
        ),
    ]
    bad = [what for ok, what in checks if not ok]
    if bad:
        raise VoxloraError(
            f"{source}: this higgs_audio checkpoint uses {', '.join(bad)}, which transformers' "
            "HiggsAudioV2ForConditionalGeneration cannot express; convert it with boson_multimodal first"
        )


def config_from_original(config: dict, source: str = "config.json") -> dict:
    """Boson's ``higgs_audio`` config.json -> the keyword arguments of ``HiggsAudioV2Config``."""
    if config.get("model_type") != "higgs_audio" or not isinstance(config.get("text_config"), dict):
        raise VoxloraError(
            f"{source}: not an original Higgs Audio config (model_type higgs_audio with text_config)"
        )
    _refuse(config, source)
    text = config["text_config"]
    out = {k: text[k] for k in TEXT_FIELDS if k in text}
    rope = dict(text.get("rope_scaling") or {})
    if rope or "rope_theta" in text:
        if "type" in rope:
            rope["rope_type"] = rope.pop("type")
        rope.setdefault("rope_type", "default")
        rope["rope_theta"] = text.get("rope_theta", 10000.0)
        out["rope_parameters"] = rope
    out["num_codebooks"] = config.get("audio_num_codebooks", 12)
    out["codebook_size"] = config.get("audio_codebook_size", 1024) + 2  # the codes + stream bos and eos
    for hf, orig in (
        ("audio_stream_bos_id", "audio_stream_bos_id"),
        ("audio_stream_eos_id", "audio_stream_eos_id"),
        ("audio_token_id", "audio_out_token_idx"),
        ("audio_bos_token_id", "audio_out_bos_token_id"),
        ("audio_delay_token_id", "audio_delay_token_id"),  # transformers' default (128014) when absent
        ("pad_token_id", "pad_token_id"),
    ):
        if orig in config:
            out[hf] = config[orig]
    return out


def config_to_original(config: dict) -> dict:
    """A transformers ``higgs_audio_v2`` config.json in Boson's ``higgs_audio`` form (the inverse)."""
    text = {k: config[k] for k in TEXT_FIELDS if k in config}
    text["model_type"] = "llama"
    rope = dict(config.get("rope_parameters") or {})
    if rope:
        text["rope_theta"] = rope.pop("rope_theta", 10000.0)
        text["rope_scaling"] = rope if rope.get("rope_type", "default") != "default" else None
    return {
        "model_type": "higgs_audio",
        "architectures": ["HiggsAudioModel"],
        "text_config": text,
        "audio_adapter_type": "dual_ffn_fast_forward",
        "audio_dual_ffn_layers": list(range(config["num_hidden_layers"])),
        "audio_ffn_hidden_size": config["hidden_size"],
        "audio_ffn_intermediate_size": config["intermediate_size"],
        "use_delay_pattern": True,
        "skip_audio_tower": False,
        "audio_num_codebooks": config["num_codebooks"],
        "audio_codebook_size": config["codebook_size"] - 2,
        "audio_stream_bos_id": config["audio_stream_bos_id"],
        "audio_stream_eos_id": config["audio_stream_eos_id"],
        "audio_out_token_idx": config["audio_token_id"],
        "audio_out_bos_token_id": config["audio_bos_token_id"],
        "audio_delay_token_id": config["audio_delay_token_id"],
        "pad_token_id": config["pad_token_id"],
    }
