"""Mimi on MLX: mlx-audio's codec built from a CSM folder's ``codec_config``, with its weights renamed.

mlx-audio's ``Mimi.from_pretrained`` downloads Kyutai's checkpoint (moshi's names, fixed sizes); here
the codec is built from transformers' ``MimiConfig`` of the folder and loaded from the folder's own
``codec_model.*`` tensors, renamed once:

    transformers (codec_model.)                      mlx-audio
    encoder.layers.{i}.conv                          encoder.init_conv1d / layers.{j}.downsample / final_conv1d
    encoder.layers.{i}.block.{1,3}.conv              encoder.layers.{j}.residuals.{r}.block.{0,1}
    decoder.layers.{i}.conv  (transposed conv)       decoder.layers.{j}.upsample
    {en,de}coder_transformer.layers.{n}.self_attn.   ...transformer.layers.{n}.self_attn.in_proj (q|k|v)
    quantizer.semantic_/acoustic_residual_vector_    quantizer.rvq_first / rvq_rest
      quantizer.layers.{n}.codebook.embed_sum          .vq.layers.{n}.codebook.embedding_sum

Seanet's layer indices are walked from the config (one conv, then per ratio: residual blocks, ELU,
strided conv; then ELU and the last conv), so any ``num_residual_layers`` and ratios map. As for the
CSM transformers, the codec's RoPE rotates halves (``rope_traditional=False``), transformers' way.
"""

import mlx.core as mx
import numpy as np
from mlx_audio.codec.models.mimi.mimi import Mimi, MimiConfig
from mlx_audio.codec.models.mimi.modules import (
    ConvTranspose1d,
    EuclideanCodebook,
    SeanetConfig,
    TransformerConfig,
)

from voxlora.backends.mlx.weights import load_checked
from voxlora.errors import VoxloraError

PREFIX = "codec_model."


def mimi_config(codec: dict) -> MimiConfig:
    """mlx-audio's MimiConfig from transformers' Mimi ``codec_config`` dict."""
    from transformers import MimiConfig as HFMimiConfig

    hf = HFMimiConfig(**{k: v for k, v in codec.items() if k not in ("model_type", "transformers_version")})
    if hf.num_key_value_heads != hf.num_attention_heads:
        raise VoxloraError("the MLX Mimi needs num_key_value_heads == num_attention_heads")
    if hf.head_dim * hf.num_attention_heads != hf.hidden_size:
        raise VoxloraError("the MLX Mimi needs head_dim * num_attention_heads == hidden_size")
    seanet = SeanetConfig(
        dimension=hf.hidden_size,
        channels=hf.audio_channels,
        causal=hf.use_causal_conv,
        nfilters=hf.num_filters,
        nresidual_layers=hf.num_residual_layers,
        ratios=list(hf.upsampling_ratios),
        ksize=hf.kernel_size,
        residual_ksize=hf.residual_kernel_size,
        last_ksize=hf.last_kernel_size,
        dilation_base=hf.dilation_growth_rate,
        pad_mode=hf.pad_mode,
        true_skip=not hf.use_conv_shortcut,
        compress=hf.compress,
    )
    rope = getattr(hf, "rope_parameters", None) or {"rope_theta": getattr(hf, "rope_theta", 10000.0)}
    transformer = TransformerConfig(
        d_model=hf.hidden_size,
        num_heads=hf.num_attention_heads,
        num_layers=hf.num_hidden_layers,
        causal=True,
        norm_first=True,
        bias_ff=False,
        bias_attn=hf.attention_bias,
        layer_scale=hf.layer_scale_initial_scale,
        positional_embedding="rope",
        use_conv_block=False,
        cross_attention=False,
        conv_kernel_size=3,
        use_conv_bias=True,
        gating=False,
        norm="layer_norm",
        context=hf.sliding_window,
        max_period=int(rope["rope_theta"]),
        max_seq_len=hf.max_position_embeddings,
        kv_repeat=1,
        dim_feedforward=hf.intermediate_size,
        conv_layout=True,
        rope_traditional=False,
        gelu="erf" if hf.hidden_act == "gelu" else "tanh",
    )
    return MimiConfig(
        channels=hf.audio_channels,
        sample_rate=hf.sampling_rate,
        frame_rate=hf.frame_rate,
        renormalize=True,
        seanet=seanet,
        transformer=transformer,
        quantizer_nq=hf.num_quantizers,
        quantizer_bins=hf.codebook_size,
        quantizer_dim=hf.codebook_dim,
    )


def _seanet_names(cfg: SeanetConfig) -> dict[str, str]:
    """transformers' Seanet layer prefixes -> mlx-audio's, walked as both build their layer lists."""
    enc, i = {"encoder.layers.0.": "encoder.init_conv1d."}, 1
    for j in range(len(cfg.ratios)):
        for r in range(cfg.nresidual_layers):
            enc[f"encoder.layers.{i}."] = f"encoder.layers.{j}.residuals.{r}."
            i += 1
        enc[f"encoder.layers.{i + 1}."] = f"encoder.layers.{j}.downsample."  # i is the ELU
        i += 2
    enc[f"encoder.layers.{i + 1}."] = "encoder.final_conv1d."
    dec, i = {"decoder.layers.0.": "decoder.init_conv1d."}, 1
    for j in range(len(cfg.ratios)):
        dec[f"decoder.layers.{i + 1}."] = f"decoder.layers.{j}.upsample."  # i is the ELU
        i += 2
        for r in range(cfg.nresidual_layers):
            dec[f"decoder.layers.{i}."] = f"decoder.layers.{j}.residuals.{r}."
            i += 1
    dec[f"decoder.layers.{i + 1}."] = "decoder.final_conv1d."
    return {**enc, **dec}


_TRANSFORMER = {
    "self_attn.o_proj.": "self_attn.out_proj.",
    "input_layernorm.": "norm1.",
    "post_attention_layernorm.": "norm2.",
    "mlp.fc1.": "gating.linear1.",
    "mlp.fc2.": "gating.linear2.",
    "self_attn_layer_scale.": "layer_scale_1.",
    "mlp_layer_scale.": "layer_scale_2.",
}


def mimi_weights(tensors: dict, cfg: MimiConfig) -> dict:
    """transformers' ``codec_model.*`` tensors (numpy or lazy MLX) -> {mlx-audio Mimi name: array}."""
    hf = {k.removeprefix(PREFIX): v for k, v in tensors.items() if k.startswith(PREFIX)}
    seanet, out = _seanet_names(cfg.seanet), {}
    for name, t in hf.items():
        if name.startswith(("encoder.", "decoder.")) and ".layers." in name and "transformer" not in name:
            prefix = next((p for p in seanet if name.startswith(p)), None)
            if prefix is None:
                raise VoxloraError(f"codec tensor {PREFIX}{name} has no place in the MLX Mimi")
            rest = name[len(prefix) :]  # conv.weight, or block.{1,3}.conv.weight in a residual block
            if rest.startswith("block."):  # transformers counts the ELUs between the convs
                rest = rest.replace("block.1.", "block.0.").replace("block.3.", "block.1.")
                key = seanet[prefix] + rest.replace(".conv.", ".conv.conv.")
            else:
                inner = "convtr.convtr." if seanet[prefix].endswith("upsample.") else "conv.conv."
                key = seanet[prefix] + inner + rest.removeprefix("conv.")
        elif name.startswith(("encoder_transformer.", "decoder_transformer.")):
            stack, _, rest = name.partition(".")
            if rest.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
                continue  # fused into in_proj below
            for src, dst in _TRANSFORMER.items():
                rest = rest.replace(src, dst)
            key = f"{stack}.transformer.{rest}"
        elif name.startswith("downsample."):
            key = "downsample.conv.conv.conv.weight"
        elif name.startswith("upsample."):
            key = "upsample.convtr.convtr.convtr.weight"
        elif name.startswith("quantizer."):
            key = (
                name.replace("semantic_residual_vector_quantizer.", "rvq_first.")
                .replace("acoustic_residual_vector_quantizer.", "rvq_rest.")
                .replace(".layers.", ".vq.layers.")
                .replace("codebook.embed_sum", "codebook.embedding_sum")
            )
        else:
            raise VoxloraError(f"codec tensor {PREFIX}{name} has no place in the MLX Mimi")
        if key.endswith("convtr.weight"):  # (in, out/groups, k) -> (out, k, in/groups)
            t = t.transpose(0, 2, 1) if t.shape[1] == 1 else t.transpose(1, 2, 0)
        elif t.ndim == 3:  # conv (out, in, k) -> (out, k, in)
            t = t.swapaxes(1, 2)
        out[key] = t
    for stack in ("encoder_transformer", "decoder_transformer"):
        for n in range(cfg.transformer.num_layers):
            qkv = [hf[f"{stack}.layers.{n}.self_attn.{p}_proj.weight"] for p in "qkv"]
            cat = mx.concatenate if isinstance(qkv[0], mx.array) else np.concatenate
            out[f"{stack}.transformer.layers.{n}.self_attn.in_proj.weight"] = cat(qkv, 0)
    return out


def load_mimi(codec_config: dict, tensors: dict) -> Mimi:
    """An mlx-audio Mimi with the folder's codec weights (every parameter, exact shapes)."""

    cfg = mimi_config(codec_config)
    mimi = Mimi(cfg)
    weights = mimi_weights(tensors, cfg)
    load_checked(mimi, weights, "the codec weights do not fit the MLX Mimi", dtype=mx.float32)

    def refresh(module, name, _):  # derived tensors (codebook means, expanded conv weights)
        if isinstance(module, EuclideanCodebook) and name == "initialized":
            module.update_in_place()
        if isinstance(module, ConvTranspose1d) and name == "weight":
            module.update_in_place()
        return True

    mimi.filter_and_map(refresh)
    mimi.eval()
    mx.eval(mimi.parameters())
    return mimi


def frame_size(codec: Mimi) -> int:
    """Audio samples per codec frame (1920 for Mimi at 24 kHz)."""
    return int(round(codec.cfg.sample_rate / codec.cfg.frame_rate))


def encode(codec: Mimi, samples: np.ndarray) -> np.ndarray:
    """Mono float32 samples at the codec's rate (n,) -> codes (num_codebooks, frames) int16."""
    x = mx.array(np.asarray(samples, dtype=np.float32))[None, None]  # (1, 1, n)
    codes = codec.encode(x)[0]  # (K, F)
    return np.array(codes).astype(np.int16)


def decode(codec: Mimi, codes) -> np.ndarray:
    """Codes (T, K) -> waveform (T * frame_size,) float32; a VoxloraError if it cannot be one."""
    codes = np.asarray(codes)
    n_frames = codes.shape[0]
    if n_frames == 0:
        raise VoxloraError(
            "the model ended the clip before any audio (an end-of-audio frame came first); "
            "try another --seed or --temperature"
        )
    size = codec.cfg.quantizer_bins
    if codes.min() < 0 or codes.max() >= size:
        raise VoxloraError(
            f"the model produced audio codes outside the codec's 0..{size - 1}; not decoding them"
        )
    wave = np.array(codec.decode(mx.array(codes.T[None].astype(np.int32)))[0, 0], dtype=np.float32)
    expected = n_frames * frame_size(codec)
    if wave.shape != (expected,) or not np.isfinite(wave).all():
        raise VoxloraError(
            f"decoding {n_frames} audio frames gave {wave.size} samples (expected {expected}) "
            "or non-finite samples"
        )
    return wave
