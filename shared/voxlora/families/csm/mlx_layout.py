"""The csm-1b-mlx checkpoint layout of CSM: names, q/k rows, and the transformers-named view of it.

What the real repos hold (``senstella/csm-1b-mlx``, the weights of ``senstella/csm-mlx``): one
``ckpt.safetensors`` (bf16) and a README; no config.json, no tokenizer, no codec (csm-mlx fetches
Mimi from ``kyutai/moshiko-pytorch-bf16`` and the Llama-3.2 tokenizer from another repo). csm-mlx
loads the file with ``CSM.load_weights(path, strict=True)``, so its names are csm-mlx's modules:
mlx-lm Llama stacks (``backbone.layers.0.self_attn.q_proj.weight``, ``mlp.gate_proj``,
``input_layernorm``, ``backbone.norm.weight``) and Sesame's heads (``text_embeddings``,
``audio_embeddings``, ``projection``, ``codebook0_head``, ``audio_head``) — mlx-audio's
``SesameModel`` names. Sesame's own torchtune names (``attn.q_proj``, ``mlp.w1``, ``sa_norm.scale``)
are read too: mlx-audio's ``Model.sanitize`` renames them, and `sanitize_name` does the same.
Its q/k rows are in Sesame's interleaved RoPE convention (csm-mlx rotates adjacent pairs).

voxlora's file tools and adapters speak transformers' CSM names: `view_name` maps each stored name
to one (the one audio table under the name transformers stores it, the depth decoder's, as a tied
CSM-1B does), and `stored_name` maps back. A LoRA delta of q/k is in transformers' halves
convention: `to_halves` / `to_interleaved` move the stored rows between the two (exact permutations).

A folder in this layout is recognised by `voxlora.modelfolder.is_mlx_ckpt` (``ckpt.safetensors``,
no ``model.safetensors``); its config.json, when present, gives the sizes, else CSM-1B's.
"""

import json
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.modelfolder import MLX_CKPT

LAYOUT = "csm-1b-mlx"
CKPT = MLX_CKPT
# transformers' CSM name (prefix) -> mlx-audio SesameModel / csm-mlx name, first match wins. A tied
# checkpoint stores the audio embedding once, under the decoder's name; mlx-audio has one table for both.
HF_TO_MLX = (
    ("backbone_model.embed_tokens.embed_audio_tokens", "audio_embeddings"),
    ("depth_decoder.model.embed_tokens", "decoder_audio_embeddings"),
    ("depth_decoder.model.inputs_embeds_projector", "projection"),
    ("depth_decoder.codebooks_head.weight", "audio_head"),
    ("depth_decoder.model", "decoder"),
    ("backbone_model", "backbone"),
    ("embed_text_tokens", "text_embeddings"),
    ("lm_head", "codebook0_head"),
)
BACKBONE_AUDIO = "backbone_model.embed_tokens.embed_audio_tokens.weight"
DECODER_AUDIO = "depth_decoder.model.embed_tokens.weight"
STORED_AUDIO = "audio_embeddings.weight"  # the one audio table of the csm-1b-mlx layout
STACKS = {"backbone": "backbone_model.layers.", "decoder": "depth_decoder.model.layers."}


def _rename(name: str, table) -> str | None:
    for src, dst in table:
        if name == src or name.startswith(src + "."):
            return dst + name[len(src) :]
    return None


def to_mlx_name(hf_name: str) -> str | None:
    """A transformers CSM tensor or module name as mlx-audio's; None for the codec and unknowns.

    >>> to_mlx_name("backbone_model.layers.3.self_attn.q_proj.weight")
    'backbone.layers.3.self_attn.q_proj.weight'
    >>> to_mlx_name("lm_head"), to_mlx_name("depth_decoder.model.inputs_embeds_projector")
    ('codebook0_head', 'projection')
    """
    return _rename(hf_name, HF_TO_MLX)


def to_hf_name(mlx_name: str) -> str | None:
    """The inverse of `to_mlx_name`.

    >>> to_hf_name("decoder.layers.0.mlp.up_proj")
    'depth_decoder.model.layers.0.mlp.up_proj'
    """
    return _rename(mlx_name, [(m, h) for h, m in HF_TO_MLX])


def sanitize_name(name: str) -> str:
    """One stored name as mlx-audio's ``Model.sanitize`` renames it (without its ``model.`` prefix):
    Sesame's torchtune names become csm-mlx's; csm-mlx's stay as they are.

    >>> sanitize_name("backbone.layers.0.attn.output_proj.weight"), sanitize_name("decoder.norm.scale")
    ('backbone.layers.0.self_attn.o_proj.weight', 'decoder.norm.weight')
    >>> sanitize_name("backbone.layers.1.mlp.w1.weight"), sanitize_name("backbone.layers.1.sa_norm.scale")
    ('backbone.layers.1.mlp.gate_proj.weight', 'backbone.layers.1.input_layernorm.weight')
    """
    name = name.removeprefix("model.")
    if "attn" in name and "self_attn" not in name:
        name = name.replace("attn", "self_attn").replace("output_proj", "o_proj")
    if "mlp" in name:
        name = name.replace("w1", "gate_proj").replace("w2", "down_proj").replace("w3", "up_proj")
    if "sa_norm" in name or "mlp_norm" in name:
        name = name.replace("sa_norm", "input_layernorm").replace("mlp_norm", "post_attention_layernorm")
        name = name.replace("scale", "weight")
    if "decoder.norm" in name or "backbone.norm" in name:
        name = name.replace("scale", "weight")
    return name


def view_name(stored: str) -> str | None:
    """A csm-1b-mlx tensor name as transformers' CSM names it (the audio table: the decoder's name).

    >>> view_name("backbone.layers.0.attn.q_proj.weight"), view_name("audio_embeddings.weight")
    ('backbone_model.layers.0.self_attn.q_proj.weight', 'depth_decoder.model.embed_tokens.weight')
    """
    hf = to_hf_name(sanitize_name(stored))
    return DECODER_AUDIO if hf == BACKBONE_AUDIO else hf


def view_shapes(stored: dict) -> dict:
    """{transformers name: shape} of a csm-1b-mlx file's {stored name: shape}; unknown names refused."""
    out, unknown = {}, []
    for name, shape in stored.items():
        hf = view_name(name)
        if hf is None:
            unknown.append(name)
        else:
            out[hf] = tuple(shape)
    if unknown:
        raise VoxloraError(
            f"{CKPT}: tensors the csm-1b-mlx layout does not have: {', '.join(sorted(unknown))}"
        )
    return out


def stored_names(stored) -> dict:
    """{transformers name: stored name} for the names of a csm-1b-mlx file (both audio names -> its table)."""
    out = {view_name(n): n for n in stored}
    if DECODER_AUDIO in out:
        out[BACKBONE_AUDIO] = out[DECODER_AUDIO]
    return out


def read_config(folder, codec_folder=None) -> dict:
    """The folder's config.json (transformers' CSM config) when it has one, else ``codec_folder``'s
    (``--codec``, when given), else CSM-1B's."""
    path = Path(folder) / "config.json"
    if not path.is_file() and codec_folder is not None:
        path = Path(codec_folder) / "config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(config, dict) and "depth_decoder_config" in config:
            return config
        raise VoxloraError(f"{path}: not a CSM config (no depth_decoder_config)")
    from transformers import CsmConfig

    return CsmConfig().to_dict()


def check_config(config: dict, shapes: dict, where) -> None:
    """Refuse a config whose attention sizes are not the weights' (``shapes``: transformers names).

    The q/k row permutation depends on the head size, which the weights alone do not tell: CSM-1B's
    is assumed when the folder has no config.json, and a model of other sizes must bring its own.
    """
    stacks = {"backbone": config, "decoder": config["depth_decoder_config"]}
    dims = head_dims(config)
    for stack, c in stacks.items():
        for proj, heads in (("q_proj", c["num_attention_heads"]), ("k_proj", c.get("num_key_value_heads"))):
            name = f"{STACKS[stack]}0.self_attn.{proj}.weight"
            want = (int(heads or c["num_attention_heads"]) * dims[stack], int(c["hidden_size"]))
            if name in shapes and tuple(shapes[name]) != want:
                raise VoxloraError(
                    f"{where}: {name} is {tuple(shapes[name])}, the config says {want}: the weights are "
                    "not CSM-1B's sizes; put the model's config.json (transformers' CSM config) beside "
                    f"{CKPT}"
                )


def head_dims(config: dict) -> dict:
    """{stack: head_dim} of a transformers CSM config (backbone and depth decoder)."""

    def one(c: dict) -> int:
        return int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])

    return {"backbone": one(config), "decoder": one(config["depth_decoder_config"])}


def rope_heads(hf_name: str, shape, dims: dict) -> int | None:
    """How many heads a q/k projection weight holds (its rows are permuted), else None."""
    if not hf_name.endswith((".self_attn.q_proj.weight", ".self_attn.k_proj.weight")):
        return None
    stack = next((s for s, prefix in STACKS.items() if hf_name.startswith(prefix)), None)
    if stack is None:
        return None
    rows, head_dim = int(shape[0]), dims[stack]
    if rows % head_dim or head_dim % 2:
        raise VoxloraError(
            f"{hf_name}: {rows} rows do not split into heads of {head_dim} (the config does not fit the "
            f"weights: put the model's config.json beside {CKPT})"
        )
    return rows // head_dim


def to_halves(w, n_heads: int):
    """q/k rows from Sesame's interleaved RoPE pairs to transformers' halves (numpy or torch).

    transformers' ``convert_csm.py`` (``permute_for_rope``): within each head, rows (0, 1, 2, 3, ...)
    pair as (0, 1), (2, 3); after it, row i pairs with row i + head_dim/2.

    >>> import numpy as np
    >>> to_halves(np.arange(4)[:, None], 1)[:, 0].tolist()
    [0, 2, 1, 3]
    """
    out, inp = w.shape
    return w.reshape(n_heads, out // n_heads // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)


def to_interleaved(w, n_heads: int):
    """The inverse of `to_halves`.

    >>> import numpy as np
    >>> to_interleaved(to_halves(np.arange(8)[:, None], 2), 2)[:, 0].tolist()
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    out, inp = w.shape
    return w.reshape(n_heads, 2, out // n_heads // 2, inp).swapaxes(1, 2).reshape(out, inp)
