"""CSM on MLX: mlx-audio's sesame model, built from a CSM config and loaded from either layout.

Two checkpoint layouts load into the same `SesameModel` (``mlx_audio.tts.models.sesame``):

* **sesame/csm-1b** (transformers): ``config.json`` + ``model.safetensors``, names such as
  ``backbone_model.layers.0.self_attn.q_proj.weight``. Renamed once at load (`HF_TO_MLX`).
* **csm-1b-mlx** (senstella/csm-1b-mlx): ``ckpt.safetensors`` alone, in csm-mlx's names (mlx-audio's
  ``SesameModel`` names) or Sesame's original ones (``attn.q_proj``, ``mlp.w1``, ``sa_norm.scale``),
  both renamed by mlx-audio's own ``Model.sanitize`` (`voxlora.families.csm.mlx_layout`). Such a
  folder has no config or codec: its config.json is read if present, else the ``codec_folder``'s
  (``--codec``), else CSM-1B's (transformers' defaults); Mimi comes from ``codec_folder``.

The model computes in transformers' convention: rotary embeddings rotate *halves* of each head
(``rotate_half``) instead of mlx-audio's interleaved pairs, so transformers' weights and peft
adapters (``q_proj``/``k_proj`` rows included) load unchanged and mean the same on both backends.
Sesame's original checkpoint is in the interleaved convention; its q/k rows are permuted at load
exactly as transformers' ``convert_csm.py`` does (`interleaved_to_halves`).

mlx-audio's ``Model`` wrapper downloads a tokenizer and Mimi from the hub when built, so only its
``SesameModel`` is used; the codec is built from the folder's own config (`voxlora.backends.mlx.mimi`).
The forward and loss are in `voxlora.backends.mlx.loss`.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten
from mlx_audio.tts.models.sesame.attention import Llama3ScaledRoPE
from mlx_audio.tts.models.sesame.sesame import SesameModel

from voxlora.backends.mlx.weights import load_checked
from voxlora.errors import VoxloraError
from voxlora.families.csm.mlx_layout import (  # noqa: F401  (the names, where callers have found them)
    BACKBONE_AUDIO,
    DECODER_AUDIO,
    HF_TO_MLX,
    to_hf_name,
    to_mlx_name,
)
from voxlora.families.csm.mlx_layout import (
    CKPT as MLX_CKPT,
)
from voxlora.families.csm.mlx_layout import to_halves as interleaved_to_halves

DTYPES = {"fp32": mx.float32, "bf16": mx.bfloat16, "fp16": mx.float16}


# ---------------------------------------------------------------------------------------- config


def _rope(cfg: dict) -> dict:
    """RoPE settings of a CSM (sub)config, transformers 4 (rope_theta/rope_scaling) or 5 (rope_parameters)."""
    params = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    params.setdefault("rope_theta", cfg.get("rope_theta", 500_000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in ("default", "llama3"):
        raise VoxloraError(f"RoPE type {kind!r} is not supported by the MLX backend (default or llama3)")
    if kind == "default":  # llama3 scaling with factor 1 is the identity
        return {"rope_theta": params["rope_theta"], "rope_type": "default", "factor": 1.0}
    return params


def sesame_config(config: dict) -> dict:
    """mlx-audio's ``SesameModelArgs`` keyword arguments from a transformers CSM config.json.

    mlx-audio otherwise falls back to fixed "llama-1B"/"llama-100M" flavors; every size is taken
    from the config here, so a tiny test model builds as CSM-1B does.
    """
    dec = config["depth_decoder_config"]

    def stack(c: dict) -> dict:
        return {
            "num_hidden_layers": c["num_hidden_layers"],
            "num_attention_heads": c["num_attention_heads"],
            "num_key_value_heads": c.get("num_key_value_heads") or c["num_attention_heads"],
            "head_dim": c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"],
            "hidden_size": c["hidden_size"],
            "intermediate_size": c["intermediate_size"],
            "rms_norm_eps": c.get("rms_norm_eps", 1e-5),
            "max_position_embeddings": c["max_position_embeddings"],
            "attention_bias": bool(c.get("attention_bias", False)),
            "mlp_bias": bool(c.get("mlp_bias", False)),
            "rope_theta": _rope(c)["rope_theta"],
            "rope_scaling": _rope(c),
        }

    for c in (config, dec):
        if c.get("hidden_act", "silu") != "silu":
            raise VoxloraError(f"hidden_act {c['hidden_act']!r} is not supported by the MLX backend (silu)")
    decoder = {
        **stack(dec),
        "backbone_hidden_size": dec.get("backbone_hidden_size", config["hidden_size"]),
        "num_codebooks": dec.get("num_codebooks", config["num_codebooks"]),
        "vocab_size": dec["vocab_size"],
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "model_type": "csm_depth_decoder_model",
        "use_cache": True,
    }
    return {
        **stack(config),
        "model_type": "csm",
        "backbone_flavor": None,
        "decoder_flavor": None,
        "text_vocab_size": config["text_vocab_size"],
        "audio_vocab_size": config["vocab_size"],
        "audio_num_codebooks": config["num_codebooks"],
        "vocab_size": config["vocab_size"],
        "num_codebooks": config["num_codebooks"],
        "depth_decoder_config": decoder,
    }


class HalvesRoPE(Llama3ScaledRoPE):
    """mlx-audio's Llama-3 RoPE, rotating halves of each head as transformers does (``rotate_half``).

    ``x`` is (B, S, heads, head_dim), as mlx-audio's sesame ``Attention`` passes it.
    """

    def __call__(self, x: mx.array, *, offset: int | None) -> mx.array:
        cos, sin = self._get_cache(x.dtype, x.shape[1], offset)  # (1, S, 1, D/2)
        x1, x2 = x[..., : self.d2], x[..., self.d2 :]
        return mx.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _set_rope(stack, c: dict) -> None:
    rope = c["rope_scaling"]
    for layer in stack.layers:
        layer.self_attn.rope = HalvesRoPE(
            c["head_dim"],
            max_seq_len=max(int(c["max_position_embeddings"]), 2048),
            base=c["rope_theta"],
            scale_factor=rope.get("factor", 1.0),
            low_freq_factor=rope.get("low_freq_factor", 1),
            high_freq_factor=rope.get("high_freq_factor", 4),
            old_context_len=rope.get("original_max_position_embeddings", 8192),
        )


def build_model(config: dict) -> SesameModel:
    """An mlx-audio SesameModel of ``config``'s sizes (random weights), computing as transformers does."""
    args = sesame_config(config)
    model = SesameModel(args)
    _set_rope(model.backbone, args)
    _set_rope(model.decoder, args["depth_decoder_config"])
    return model


def default_config() -> dict:
    """CSM-1B's config.json (transformers' CsmConfig defaults), for a csm-1b-mlx folder without one."""
    from transformers import CsmConfig

    return CsmConfig().to_dict()


# ---------------------------------------------------------------------------------------- weights


def hf_weights_to_mlx(tensors: dict) -> dict:
    """transformers CSM tensors (numpy or lazy MLX arrays, codec excluded) -> {mlx-audio name: array}.

    Only names change: the arrays pass through unevaluated (a lazy `mx.load` stays lazy).
    """
    tensors = {k: v for k, v in tensors.items() if not k.startswith("codec_model.")}
    if BACKBONE_AUDIO not in tensors and DECODER_AUDIO in tensors:  # tied: stored once
        tensors[BACKBONE_AUDIO] = tensors.pop(DECODER_AUDIO)
    elif DECODER_AUDIO in tensors and _equal(tensors[DECODER_AUDIO], tensors[BACKBONE_AUDIO]):
        del tensors[DECODER_AUDIO]
    out, unknown = {}, []
    for name, t in tensors.items():
        mlx_name = to_mlx_name(name)
        if mlx_name is None:
            unknown.append(name)
        else:
            out[mlx_name] = t
    if unknown:
        raise VoxloraError(f"tensors the MLX backend does not know: {', '.join(sorted(unknown))}")
    return out


def _equal(a, b) -> bool:
    if isinstance(a, mx.array) or isinstance(b, mx.array):
        return a.shape == b.shape and bool(mx.array_equal(mx.array(a), mx.array(b)))
    return bool(np.array_equal(a, b))


def original_weights_to_mlx(tensors: dict, config: dict) -> dict:
    """csm-1b-mlx (Sesame's original names, interleaved RoPE) -> {mlx-audio name: array}."""
    from mlx_audio.tts.models.sesame.sesame import Model

    renamed = Model.sanitize(None, tensors)  # mlx-audio's renaming; it only reads the names
    heads = {
        "backbone": (config["num_attention_heads"], config.get("num_key_value_heads")),
        "decoder": (
            config["depth_decoder_config"]["num_attention_heads"],
            config["depth_decoder_config"].get("num_key_value_heads"),
        ),
    }
    out = {}
    for name, t in renamed.items():
        name = name.removeprefix("model.")
        stack, proj = name.split(".")[0], ("." + name).split(".")[-2]
        if stack in heads and proj in ("q_proj", "k_proj") and name.endswith(".weight"):
            n_q, n_kv = heads[stack]
            t = interleaved_to_halves(t, n_q if proj == "q_proj" else (n_kv or n_q))
        out[name] = t
    return out


def read_lazy(files) -> dict:
    """{name: MLX array} of safetensors files, read lazily in their stored dtype (bf16 included).

    `mx.load` maps names to arrays that are only read from disk when evaluated, so renaming, casting
    (``astype``) and loading them into a model evaluates each tensor once, straight into the dtype
    it is used in: loading peaks near the weights' size in that dtype, never an fp32 copy of it all.
    """
    tensors = {}
    for file in files:
        try:
            tensors.update(mx.load(str(file), format="safetensors"))
        except Exception as e:  # truncated, not safetensors
            raise VoxloraError(f"{file}: not a readable safetensors file ({e})") from None
    return tensors


def load_weights(model: SesameModel, weights: dict, dtype=None) -> None:
    """Put ``{mlx name: array}`` into ``model`` (cast to ``dtype``, else as stored), every parameter
    present with its exact shape; each tensor is read and cast once, when evaluated here."""
    if "decoder_audio_embeddings.weight" in weights:  # untied tables: the decoder keeps its own
        model.decoder_audio_embeddings = nn.Embedding(*weights["decoder_audio_embeddings.weight"].shape)
    load_checked(model, weights, "the checkpoint does not fit its config", dtype=dtype)
    mx.eval(model.parameters())


@dataclass
class MlxCsm:
    """A loaded CSM on MLX: the transformers (mlx-audio SesameModel), its Mimi codec, its config."""

    model: SesameModel
    config: dict  # config.json of the folder (transformers' CSM config)
    path: Path
    layout: str  # "transformers" | "csm-1b-mlx"
    codec: object = None  # mlx_audio Mimi, or None when the folder has no codec weights

    @property
    def sample_rate(self) -> int:
        return int(self.config["codec_config"].get("sampling_rate", 24000))

    def shapes(self) -> dict:
        """transformers' tensor names -> shapes, tied names included, for adapter checks."""
        return hf_shapes(self.model)


def hf_shapes(model: SesameModel) -> dict:
    """Every parameter under its transformers name (both names of the tied audio table)."""
    shapes = {}
    for name, p in tree_flatten(model.parameters()):
        if name.endswith((".lora_a", ".lora_b")):
            continue
        hf = to_hf_name(_base_name(name))
        if hf is not None:
            shapes[hf] = tuple(p.shape)
    if DECODER_AUDIO not in shapes:
        shapes[DECODER_AUDIO] = shapes[BACKBONE_AUDIO]
    return shapes


def _base_name(name: str) -> str:
    """A LoRA-wrapped linear's weight (``q_proj.linear.weight``) under the plain linear's name."""
    return name.replace(".linear.weight", ".weight").replace(".linear.bias", ".bias")


def load_mlx_csm(model, dtype: str | None = "fp32", codec: bool = True, codec_folder=None) -> MlxCsm:
    """Load a CSM folder (either layout) for the MLX backend; ``codec=False`` skips Mimi.

    A csm-1b-mlx folder has no codec: ``codec_folder`` (``--codec``, a sesame/csm-1b-layout folder
    or hub id) gives Mimi, and the config when the folder has none (else CSM-1B's).
    Lazily: each tensor is read from disk once, straight into ``dtype`` (None: as stored), so loading
    peaks near the size of the weights in that dtype (Mimi is kept in fp32, as on torch).
    """
    from voxlora.modelfolder import is_mlx_ckpt, model_dir, weight_files

    if dtype is not None and dtype not in DTYPES:
        raise VoxloraError(f"unknown dtype {dtype!r} (use fp32, bf16 or fp16)")
    want = DTYPES.get(dtype)
    path = model_dir(model)
    codec_path = model_dir(codec_folder) if codec_folder is not None else None
    if is_mlx_ckpt(path):
        if (path / "config.json").is_file():
            config = _read_config(path)
        else:
            config = _read_config(codec_path) if codec_path is not None else default_config()
        net = build_model(config)
        load_weights(net, original_weights_to_mlx(read_lazy([path / MLX_CKPT]), config), want)
        layout = "csm-1b-mlx"
        tensors = read_lazy(weight_files(codec_path)) if codec and codec_path is not None else {}
    else:
        config = _read_config(path)
        net = build_model(config)
        tensors = read_lazy(weight_files(path))
        load_weights(net, hf_weights_to_mlx(tensors), want)
        layout = "transformers"
    net.eval()
    mimi = None
    if codec and tensors:
        from voxlora.backends.mlx import mimi as mlx_mimi

        mimi = mlx_mimi.load_mimi(config["codec_config"], tensors)
    return MlxCsm(model=net, config=config, path=path, layout=layout, codec=mimi)


def _read_config(path: Path) -> dict:
    from voxlora.models.csm import read_config

    config = read_config(path)
    if "depth_decoder_config" not in config or "codec_config" not in config:
        raise VoxloraError(
            f"{path / 'config.json'}: a CSM config needs depth_decoder_config and codec_config"
        )
    return json.loads(json.dumps(config))


def param_count(model) -> int:
    return sum(math.prod(p.shape) for _, p in tree_flatten(model.parameters()))
