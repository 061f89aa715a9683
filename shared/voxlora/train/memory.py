"""An estimate of a training run's peak memory, from the checkpoint's headers and the manifest alone.

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

import math

GiB = 2**30
RUNTIME = 0.6 * GiB
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
OPTIMIZER_STATE = {"adamw": 8, "adam": 8, "sgd": 0}


def text_tokens(text: str) -> int:
    """A generous token count for a transcript (Llama-3's tokenizer: ~4 characters a token in English;
    the byte-level test tokenizer: 1 a byte), plus the speaker tag and special tokens."""
    return len(text.encode("utf-8")) // 3 + 8


def estimate(config: dict, shapes: dict, trained_params: int, *, dtype: str, batch: int, positions: int,
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
                est = estimate(config, shapes, lora, dtype=dtype, batch=batch, positions=frames + 60,
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
    from voxlora.models.csm import model_dir, read_config
    from voxlora.safetensors_stream import shapes as header_shapes

    folder = model_dir(config.model)
    csm = read_config(folder)
    shapes = targets.base_shapes(folder)
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
    parts = estimate(csm, shapes, trained - (model_params if config.full else 0), dtype=dtype, batch=batch,
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
