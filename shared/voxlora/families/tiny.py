"""Tiny checkpoints of Higgs Audio v2 and VoxCPM in their real on-disk layout, made without model code.

Each writer takes a config in the family's own config.json format (every width scaled down), works
out every tensor's name and shape the way the model's code would create them, and writes
config.json and model.safetensors with seeded random tensors. The file tools only read names,
shapes and values, so this is all they need; tests check the Higgs names and shapes against
transformers' HiggsAudioV2ForConditionalGeneration built from the same config.

    write_tiny_higgs(tmp_path / "higgs")      # model_type higgs_audio_v2, transformers' layout
    write_tiny_voxcpm(tmp_path / "voxcpm")    # "architecture": "voxcpm", plus a stand-in audiovae.pth

`write_voxcpm_lora` writes an adapter the way VoxCPM's fine-tuning script saves one
(lora_weights.safetensors + lora_config.json), for tests of reading that format.
"""

import json
from pathlib import Path

# Higgs Audio v2 (bosonai/higgs-audio-v2-generation-3B-base: hidden 3072, 28 layers, 24 heads,
# 8 KV heads, head_dim 128, 8 codebooks), every width scaled down.
HIGGS_TINY = dict(
    vocab_size=300,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    num_codebooks=8,
    codebook_size=34,  # 32 codes + stream bos/eos
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    tie_word_embeddings=False,
    pad_token_id=299,
    bos_token_id=1,
    eos_token_id=2,
    audio_token_id=296,
    audio_bos_token_id=297,
    audio_delay_token_id=298,
    audio_stream_bos_id=32,
    audio_stream_eos_id=33,
)

# VoxCPM (openbmb/VoxCPM1.5: LM hidden 1024, 24 layers, 16 heads, 2 KV heads; residual LM 8 layers;
# LocEnc and LocDiT hidden 1024, 4 layers; feat_dim 64), every width scaled down.
VOXCPM_TINY = {
    "architecture": "voxcpm",
    "lm_config": {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "max_position_embeddings": 4096,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000,
        "rope_scaling": {
            "type": "longrope",
            "long_factor": [1.0] * 8,
            "short_factor": [1.0] * 8,
            "original_max_position_embeddings": 4096,
        },
        "vocab_size": 300,
        "use_mup": False,
        "scale_emb": 12,
        "dim_model_base": 256,
        "scale_depth": 1.4,
    },
    "patch_size": 2,
    "feat_dim": 16,
    "residual_lm_num_layers": 1,
    "scalar_quantization_latent_dim": 32,
    "scalar_quantization_scale": 9,
    "encoder_config": {"hidden_dim": 32, "ffn_dim": 64, "num_heads": 2, "num_layers": 1},
    "dit_config": {
        "hidden_dim": 32,
        "ffn_dim": 64,
        "num_heads": 2,
        "num_layers": 2,
        "cfm_config": {
            "sigma_min": 1e-06,
            "solver": "euler",
            "t_scheduler": "log-norm",
            "inference_cfg_rate": 2.0,
        },
    },
    "max_length": 4096,
    "device": "cuda",
    "dtype": "bfloat16",
    "dit_mean_mode": False,
}


def _llama_layers(prefix: str, n: int, hidden: int, inter: int, heads: int, kv: int, head_dim: int, ffns):
    """Shapes of ``n`` Llama-style layers (attention, the FFNs named in ``ffns``, their norms)."""
    shapes = {}
    for i in range(n):
        p = f"{prefix}.{i}"
        shapes[f"{p}.self_attn.q_proj.weight"] = (heads * head_dim, hidden)
        shapes[f"{p}.self_attn.k_proj.weight"] = (kv * head_dim, hidden)
        shapes[f"{p}.self_attn.v_proj.weight"] = (kv * head_dim, hidden)
        shapes[f"{p}.self_attn.o_proj.weight"] = (hidden, heads * head_dim)
        for ffn, norm in ffns:
            shapes[f"{p}.{ffn}.gate_proj.weight"] = (inter, hidden)
            shapes[f"{p}.{ffn}.up_proj.weight"] = (inter, hidden)
            shapes[f"{p}.{ffn}.down_proj.weight"] = (hidden, inter)
            shapes[f"{p}.{norm}input_layernorm.weight"] = (hidden,)
            shapes[f"{p}.{norm}post_attention_layernorm.weight"] = (hidden,)
    return shapes


def higgs_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of HiggsAudioV2ForConditionalGeneration (transformers' layout) for ``config``."""
    c = config
    hidden, audio = c["hidden_size"], c["num_codebooks"] * c["codebook_size"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], hidden)}
    shapes |= _llama_layers(
        "model.layers",
        c["num_hidden_layers"],
        hidden,
        c["intermediate_size"],
        c["num_attention_heads"],
        c["num_key_value_heads"],
        c.get("head_dim") or hidden // c["num_attention_heads"],
        ffns=[("mlp", ""), ("audio_mlp", "audio_")],
    )
    shapes["model.norm.weight"] = (hidden,)
    shapes["model.embed_audio_tokens.embed_audio_tokens.weight"] = (audio, hidden)
    shapes["audio_lm_head.weight"] = (audio, hidden)
    return shapes


def _minicpm(prefix: str, lm: dict, hidden, inter, heads, layers, kv_channels, vocab) -> dict:
    """Shapes of VoxCPM's MiniCPMModel (embed_tokens only with a vocabulary; KV heads from the LM)."""
    shapes = {f"{prefix}.embed_tokens.weight": (vocab, hidden)} if vocab else {}
    head_dim = kv_channels or hidden // heads
    kv = lm["num_key_value_heads"]
    shapes |= _llama_layers(f"{prefix}.layers", layers, hidden, inter, heads, kv, head_dim, [("mlp", "")])
    shapes[f"{prefix}.norm.weight"] = (hidden,)
    return shapes


def voxcpm_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of VoxCPMModel's model.safetensors (the AudioVAE is in audiovae.pth) for ``config``."""
    lm, enc, dit, feat = (
        config["lm_config"],
        config["encoder_config"],
        config["dit_config"],
        config["feat_dim"],
    )
    h, he, hd = lm["hidden_size"], enc["hidden_dim"], dit["hidden_dim"]
    latent = config["scalar_quantization_latent_dim"]

    def linear(name, out, inp, bias=True):
        return {f"{name}.weight": (out, inp), **({f"{name}.bias": (out,)} if bias else {})}

    s = _minicpm(
        "base_lm", lm, h, lm["intermediate_size"], lm["num_attention_heads"], lm["num_hidden_layers"], None,
        lm["vocab_size"],
    )  # fmt: skip
    s |= _minicpm(
        "residual_lm", lm, h, lm["intermediate_size"], lm["num_attention_heads"], config["residual_lm_num_layers"],
        None, 0,
    )  # fmt: skip
    s["feat_encoder.special_token"] = (1, 1, 1, he)
    s |= linear("feat_encoder.in_proj", he, feat)
    s |= _minicpm(
        "feat_encoder.encoder",
        lm,
        he,
        enc["ffn_dim"],
        enc["num_heads"],
        enc["num_layers"],
        enc.get("kv_channels"),
        0,
    )
    est = "feat_decoder.estimator"
    s |= (
        linear(f"{est}.in_proj", hd, feat)
        | linear(f"{est}.cond_proj", hd, feat)
        | linear(f"{est}.out_proj", feat, hd)
    )
    for mlp in ("time_mlp", "delta_time_mlp"):
        s |= linear(f"{est}.{mlp}.linear_1", hd, hd) | linear(f"{est}.{mlp}.linear_2", hd, hd)
    s |= _minicpm(
        f"{est}.decoder",
        lm,
        hd,
        dit["ffn_dim"],
        dit["num_heads"],
        dit["num_layers"],
        dit.get("kv_channels"),
        0,
    )
    s |= linear("fsq_layer.in_proj", latent, h) | linear("fsq_layer.out_proj", h, latent)
    s |= linear("enc_to_lm_proj", h, he) | linear("lm_to_dit_proj", hd, h) | linear("res_to_dit_proj", hd, h)
    s |= linear("stop_proj", h, h) | linear("stop_head", 2, h, bias=False)
    return s


def write_checkpoint(path, config: dict, shapes: dict, seed: int = 0, dtype=None) -> Path:
    """config.json + model.safetensors with seeded random tensors of these shapes (norms at 1)."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        t = torch.randn(shape, generator=gen) * 0.05
        if name.endswith("norm.weight"):
            t = torch.ones(shape)
        tensors[name] = t.to(dtype or torch.float32).contiguous()
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    return path


def higgs_config(**overrides) -> dict:
    """The tiny Higgs config.json contents (transformers' HiggsAudioV2Config fields)."""
    return {"model_type": "higgs_audio_v2", "architectures": ["HiggsAudioV2ForConditionalGeneration"]} | {
        **HIGGS_TINY,
        **overrides,
    }


def write_tiny_higgs(path, seed: int = 0, original_layout: bool = False) -> Path:
    """A tiny Higgs Audio v2 in transformers' layout; ``original_layout``: boson_multimodal's names
    (no ``model.`` prefix on the layers, model_type ``higgs_audio``), for layout-alignment tests."""
    config = higgs_config()
    shapes = higgs_shapes(config)
    if original_layout:
        config["model_type"], config["architectures"] = "higgs_audio", ["HiggsAudioModel"]
        rename = {
            "model.embed_audio_tokens.embed_audio_tokens.weight": "audio_codebook_embeddings.weight",
            "audio_lm_head.weight": "audio_decoder_proj.audio_lm_head.weight",
        }
        shapes = {rename.get(n, n.removeprefix("model.")): s for n, s in shapes.items()}
        # the original keeps a Whisper audio tower beside the LLM; it has q_proj too, never targeted
        shapes |= {
            f"audio_tower.layers.0.self_attn.{p}.weight": (32, 32) for p in ("q_proj", "k_proj", "v_proj")
        }
    return write_checkpoint(path, config, shapes, seed)


def write_tiny_voxcpm(path, seed: int = 0) -> Path:
    """A tiny VoxCPM: config.json, model.safetensors and a stand-in audiovae.pth (a small pickle,
    as VoxCPM ships its AudioVAE; voxlora never opens it, lora-merge copies it)."""
    import torch

    path = write_checkpoint(path, VOXCPM_TINY, voxcpm_shapes(VOXCPM_TINY), seed)
    torch.save({"state_dict": {"encoder.block.0.weight": torch.zeros(2, 2)}}, path / "audiovae.pth")
    return path


def write_voxcpm_lora(adapter, path, enable_lm=True, enable_dit=True, enable_proj=False) -> Path:
    """``adapter`` saved as VoxCPM's trainer saves LoRA: lora_weights.safetensors with
    ``<module>.lora_A`` / ``.lora_B`` (no .weight) and lora_config.json {base_model, lora_config}."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for module, (A, B) in adapter.lora.items():
        tensors[f"{module}.lora_A"] = A.contiguous()
        tensors[f"{module}.lora_B"] = B.contiguous()
    save_file(tensors, path / "lora_weights.safetensors")
    lora_config = {
        "enable_lm": enable_lm,
        "enable_dit": enable_dit,
        "enable_proj": enable_proj,
        "r": adapter.r,
        "alpha": adapter.alpha,
        "dropout": adapter.dropout,
        "target_modules_lm": ["q_proj", "v_proj", "k_proj", "o_proj"],
        "target_modules_dit": ["q_proj", "v_proj", "k_proj", "o_proj"],
        "target_proj_modules": ["enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj"],
    }
    info = {"base_model": adapter.base_model, "lora_config": lora_config}
    (path / "lora_config.json").write_text(json.dumps(info, indent=2) + "\n")
    return path
