"""lora-train --dry-run: the peak GPU memory a run should need, estimated before anything loads.

From the checkpoint's safetensors headers (tensor shapes) and config.json alone::

    weights      base parameters x bytes of --dtype (0.5625 bytes with --quantize 4bit: 4-bit
                 values plus one fp32 scale per 64), fp32 with --full
    trained      LoRA (or every weight with --full): fp32 master weights + fp32 gradients
    optimizer    Adam/AdamW: two fp32 moments per trained number; SGD: none
    activations  per position of the batch budget (--max-batch-frames, else --batch-size x
                 ``positions_per_clip``), per layer: with --grad-checkpointing only the layer's
                 input is kept (hidden x bytes) plus one layer recomputed in the backward;
                 without, each layer keeps ~(10 hidden + 4 intermediate) values per position
    heads        the output logits of the positions that predict targets, fp32 (x2 for the softmax)

plus a fixed 10 % (``overhead``) for the CUDA context, allocator fragmentation and temporaries. It is an
estimate (transformers' and the kernels' exact workspaces vary), meant to choose settings: the
README's memory table comes from it.
"""

import math

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
GIB = 2**30


def estimate(
    shapes: dict,
    model_config: dict,
    trained_params: int,
    *,
    dtype: str = "bf16",
    full: bool = False,
    optimizer: str = "adamw",
    grad_checkpointing: bool = True,
    quantize: str | None = None,
    positions: int = 2048,
    head_outputs: int | None = None,
) -> dict:
    """The estimate in GiB per part and in total, for ``positions`` positions per micro-batch."""
    base = sum(math.prod(s) for s in shapes.values())
    if full:
        weight_bytes = 4.0
    elif quantize == "4bit":
        weight_bytes = 0.5625
    else:
        weight_bytes = BYTES[dtype]
    act_bytes = BYTES[dtype]
    text = model_config.get("text_config") or model_config
    hidden = int(text.get("hidden_size", 0))
    inter = int(text.get("intermediate_size", 4 * hidden))
    layers = int(text.get("num_hidden_layers", 0))
    if head_outputs is None:
        head_outputs = int(model_config.get("num_codebooks", 1)) * int(model_config.get("codebook_size", 0))
    trained = base if full else trained_params
    if grad_checkpointing:
        activations = positions * act_bytes * (layers * hidden + 10 * hidden + 4 * inter)
    else:
        activations = positions * act_bytes * layers * (10 * hidden + 4 * inter)
    parts = {
        "weights": base * weight_bytes,
        "trained": trained * 8.0,
        "optimizer": trained * (8.0 if optimizer in ("adam", "adamw") else 0.0),
        "activations": float(activations),
        "heads": positions * head_outputs * 4.0 * 2,
    }
    parts["overhead"] = sum(parts.values()) * 0.1
    return {
        "base_params": base,
        "trained_params": trained,
        "positions": positions,
        "estimated_peak_GiB": round(sum(parts.values()) / GIB, 2),  # the one name, every family and backend
        "estimate_MiB": {k: round(v / 2**20, 1) for k, v in parts.items()},
    }


POSITIONS_PER_CLIP = (
    512  # a ~15 s clip with its text and reference (Higgs: 25 frames/s), when no budget is given
)
BIG_MODEL = 2e9  # parameters above which --grad-checkpointing defaults to on


def _model_config(folder, config) -> dict:
    """config.json of the model folder; a csm-1b-mlx folder's (`mlx_layout.read_config`) may come from --codec."""
    from voxlora.modelfolder import is_mlx_ckpt, model_dir

    if is_mlx_ckpt(folder):
        from voxlora.families.csm import mlx_layout

        return mlx_layout.read_config(folder, config.codec and model_dir(config.codec))
    from voxlora.families import read_config

    return read_config(folder)


def dry_run(config, settings) -> dict:
    """lora-train --dry-run's record: the run's settings and one estimate, ``estimated_peak_GiB`` with
    its parts in ``estimate_MiB`` (nothing loaded). CSM's is `plan`'s, from the manifest's longest
    clip; the other families' `estimate`'s, from the batch budget."""
    import dataclasses

    from voxlora import families, targets
    from voxlora.modelfolder import model_dir

    folder = model_dir(config.model)
    kind = families.resolve(folder)
    if kind.name == "csm":  # CSM's own estimate, from the manifest's longest clip
        return {"family": kind.name, **plan(config, settings)}
    shapes = targets.base_shapes(folder)
    base_only = {n: s for n, s in shapes.items() if not kind.is_codec(n)}
    if config.full:
        trained = sum(math.prod(s) for s in base_only.values())
    else:
        selection = targets.select(shapes, dataclasses.replace(settings, family=kind.name), kind)
        trained = selection.lora_params(settings.rank) + selection.trained_params()
    model_config = _model_config(folder, config)
    if model_config.get("model_type") == "higgs_audio":  # Boson's layout: the audio fields have other names
        model_config = {**model_config, "num_codebooks": model_config.get("audio_num_codebooks", 8),
                        "codebook_size": model_config.get("audio_codebook_size", 1024) + 2}  # fmt: skip
    n = sum(math.prod(s) for s in base_only.values())
    checkpointing = config.grad_checkpointing if config.grad_checkpointing is not None else n > BIG_MODEL
    positions = config.max_batch_frames or config.batch_size * POSITIONS_PER_CLIP
    result = estimate(
        base_only, model_config, trained, dtype=config.dtype, full=config.full, optimizer=config.optimizer,
        grad_checkpointing=checkpointing, quantize=getattr(config, "quantize", None), positions=positions,
    )  # fmt: skip
    return {"model": config.model, "family": kind.name, "dry_run": True, "dtype": config.dtype,
            "grad_checkpointing": checkpointing, "quantize": getattr(config, "quantize", None), **result}  # fmt: skip


# ---------------------------------------------------------------- CSM, from the manifest
"""CSM's own estimate (`plan`, added to lora-train --dry-run's record for CSM; the README's table of
what fits 16/32/64 GB Macs and 24/48/80 GB GPUs is `fitting`):

`lora-train --dry-run` prints it before anything is loaded; the README's table of settings that
fit 16/32/64 GB Macs and 24/48/80 GB GPUs comes from the same formula (`table`). It is an
*estimate*: an upper-leaning sum of what a step holds at once, in bytes (b: bytes per element of the
compute dtype, 4 for fp32, 2 for bf16/fp16)::

    weights      = P_model * b  +  P_codec * 4          the base in the compute dtype; Mimi in fp32
                                                        (held while the clips are coded)
    trained      = P_trained * (4 + 4 + state)          fp32 master weights and gradients, plus the
                                                        optimizer's state: 8 (AdamW/Adam m, v), 0 (SGD)
    activations  = B * S * L * H * (34 + 5 A S / H) * b / 2        per backbone layer (Korthikanti
                 + B * F * K * Ld * Hd * (34 + 5 Ad K / Hd) * b / 2  et al. 2022: 34 s h + 5 a s^2
                                                        bytes per layer in 16 bits); the depth decoder
                                                        runs F = fraction * frames sequences of K codebooks
    logits       = B * (frames * V + F * (K - 1) * V) * 4 * 2       fp32 logits and their gradient
    runtime      = 0.6 GiB (torch or MLX, Python, the processor)

S is the longest clip's positions (text tokens + frames + 2), B the batch size (or
max_batch_frames / S), L, H, A the backbone's layers, width and heads, V the audio vocabulary.
Gradient checkpointing would drop the activations to about one layer's; it is not assumed.
"""


GiB = 2**30
RUNTIME = 0.6 * GiB
OPTIMIZER_STATE = {"adamw": 8, "adam": 8, "sgd": 0}


def text_tokens(text: str) -> int:
    """A generous token count for a transcript (Llama-3's tokenizer: ~4 characters a token in English;
    the byte-level test tokenizer: 1 a byte), plus the speaker tag and special tokens."""
    return len(text.encode("utf-8")) // 3 + 8


def csm_estimate(config: dict, shapes: dict, trained_params: int, *, dtype: str, batch: int, positions: int,
             frames: int, decoder_fraction: float, optimizer: str = "adamw") -> dict:  # fmt: skip
    """{part: bytes} and the total for one step of a CSM run (``config``: the CSM config.json as a dict).

    ``shapes``: every tensor's shape (the headers); ``positions``/``frames``: the longest clip's.
    """
    b = BYTES[dtype]
    codec = sum(math.prod(s) for n, s in shapes.items() if n.startswith("codec_model."))
    model = sum(math.prod(s) for n, s in shapes.items() if not n.startswith("codec_model."))
    dec = config["depth_decoder_config"]
    L, H, A = config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]
    Ld, Hd, Ad = dec["num_hidden_layers"], dec["hidden_size"], dec["num_attention_heads"]
    K, V = config["num_codebooks"], config["vocab_size"]
    S, F = positions, max(1, math.ceil(frames * decoder_fraction))
    parts = {
        "weights": model * b + codec * 4,
        "trained": trained_params * (8 + OPTIMIZER_STATE[optimizer]),
        "activations": batch * S * L * H * (34 + 5 * A * S / H) * b / 2
        + batch * F * K * Ld * Hd * (34 + 5 * Ad * K / Hd) * b / 2,
        "logits": batch * (frames * V + F * (K - 1) * V) * 4 * 2,
        "runtime": RUNTIME,
    }
    parts = {k: int(v) for k, v in parts.items()}
    return {**parts, "total": sum(parts.values())}


def gib(n: int) -> float:
    return round(n / GiB, 2)


def csm_1b_shapes() -> tuple[dict, dict]:
    """(config dict, {tensor: shape}) of CSM-1B, from transformers' defaults (no weights: meta device)."""
    import torch
    from transformers import CsmConfig, CsmForConditionalGeneration

    config = CsmConfig()
    with torch.device("meta"):
        model = CsmForConditionalGeneration(config)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    shapes = {n: tuple(p.shape) for n, p in model.state_dict().items() if n not in tied}
    return config.to_dict(), shapes


def table(seconds=(10, 20), batches=(1, 2, 4, 8, 16), dtypes=("bf16", "fp32")) -> list[dict]:
    """Estimates for CSM-1B, LoRA r=8 on q_proj,v_proj of both stacks (voxlora's default), AdamW,
    decoder fraction 1/16: one row per (dtype, clip length, batch)."""
    config, shapes = csm_1b_shapes()
    dec = config["depth_decoder_config"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    per_layer = 8 * ((config["hidden_size"] * 2) + (config["hidden_size"] + kv))
    dkv = dec["num_key_value_heads"] * dec["head_dim"]
    per_dec = 8 * ((dec["hidden_size"] * 2) + (dec["hidden_size"] + dkv))
    lora = config["num_hidden_layers"] * per_layer + dec["num_hidden_layers"] * per_dec
    rows = []
    for dtype in dtypes:
        for s in seconds:
            frames = int(s * 12.5)
            for batch in batches:
                est = csm_estimate(config, shapes, lora, dtype=dtype, batch=batch, positions=frames + 60,
                               frames=frames, decoder_fraction=1 / 16)  # fmt: skip
                rows.append({"dtype": dtype, "seconds": s, "batch": batch, "GiB": gib(est["total"])})
    return rows


def _seconds(record: dict) -> float:
    if isinstance(record.get("duration"), int | float):
        return float(record["duration"])
    import soundfile as sf

    try:
        return float(sf.info(record["audio"]).duration)
    except Exception:  # unreadable clips are skipped by the run itself; they hold no memory
        return 0.0


def plan(config, settings=None) -> dict:
    """`lora-train --dry-run`: the run's estimated peak memory, from headers and the manifest only.

    ``config``: a resolved `TrainConfig`; ``settings``: the fresh adapter's `LoraSettings`.
    """
    from voxlora import targets
    from voxlora.lora_options import LoraSettings
    from voxlora.manifest import read_manifest
    from voxlora.models.csm import model_dir
    from voxlora.safetensors_stream import shapes as header_shapes

    folder = model_dir(config.model)
    csm = _model_config(folder, config)
    shapes = targets.base_shapes(folder)
    if config.codec and not any(
        n.startswith("codec_model.") for n in shapes
    ):  # csm-1b-mlx: Mimi from --codec
        codec = targets.base_shapes(model_dir(config.codec))
        shapes.update({n: s for n, s in codec.items() if n.startswith("codec_model.")})
    model_params = sum(math.prod(s) for n, s in shapes.items() if not n.startswith("codec_model."))
    if config.full:
        trained = model_params
    elif config.adapter:
        from pathlib import Path

        adapter = Path(config.adapter) / "adapter_model.safetensors"
        trained = sum(math.prod(s) for s in header_shapes([adapter]).values())
    else:
        settings = settings or LoraSettings()
        selection = targets.select(shapes, settings)
        trained = selection.lora_params(settings.rank) + selection.trained_params()
    records, _ = read_manifest(config.manifest)
    frame_rate = float(csm["codec_config"].get("frame_rate") or 12.5)
    longest = max(records, key=_seconds, default=None)
    seconds = _seconds(longest) if longest else 0.0
    frames = int(math.ceil(seconds * frame_rate))
    positions = frames + 2 + (text_tokens(longest.get("text", "")) if longest else 0)
    batch = config.batch_size
    if config.max_batch_frames:
        batch = max(1, config.max_batch_frames // max(positions, 1))
    dtype = "fp32" if config.full else config.dtype
    parts = csm_estimate(csm, shapes, trained - (model_params if config.full else 0), dtype=dtype, batch=batch,
                     positions=positions, frames=frames, decoder_fraction=config.decoder_frame_fraction,
                     optimizer=config.optimizer)  # fmt: skip
    if config.full:  # the weights are the trained ones: gradients and optimizer state on top
        parts["trained"] = model_params * (4 + OPTIMIZER_STATE[config.optimizer])
        parts["total"] = sum(v for k, v in parts.items() if k != "total")
    return {
        "dry_run": True,
        "model": config.model,
        "backend": config.backend,
        "dtype": dtype,
        "clips": len(records),
        "longest_s": round(seconds, 2),
        "positions": positions,
        "batch": batch,
        "trained_params": trained,
        "estimated_peak_GiB": gib(parts["total"]),
        "estimate_MiB": {k: round(v / 2**20, 1) for k, v in parts.items() if k != "total"},
    }


# Memory a run may use: macOS lets the GPU wire about 70% of unified memory; a GPU's own, less 5%.
BUDGETS = {"Mac 16 GB": 16 * 0.7, "Mac 32 GB": 32 * 0.7, "Mac 64 GB": 64 * 0.7,
           "GPU 24 GB": 24 * 0.95, "GPU 48 GB": 48 * 0.95, "GPU 80 GB": 80 * 0.95}  # fmt: skip


def fitting(budgets=BUDGETS, batches=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)) -> list[dict]:
    """The README's memory table: per budget (GiB), the largest batch whose estimate fits, for CSM-1B
    LoRA (`table`'s settings) in bf16 on 10 s and 20 s clips and in fp32 on 10 s clips."""
    rows = table(seconds=(10, 20), batches=batches, dtypes=("bf16", "fp32"))
    out = []
    for name, limit in budgets.items():
        row = {"memory": name, "usable GiB": round(limit, 1)}
        for dtype, seconds in (("bf16", 10), ("bf16", 20), ("fp32", 10)):
            fit = [r for r in rows if r["dtype"] == dtype and r["seconds"] == seconds and r["GiB"] <= limit]
            best = max(fit, key=lambda r: r["batch"], default=None)
            row[f"{dtype}, {seconds} s clips"] = (
                f"batch {best['batch']} ({best['GiB']} GiB)" if best else "none"
            )
        out.append(row)
    return out
