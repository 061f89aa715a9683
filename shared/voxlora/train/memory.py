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

plus a fixed 10 % for the CUDA context, allocator fragmentation and temporaries. It is an
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
    total = sum(parts.values()) * 1.1
    return {
        "base_params": base,
        "trained_params": trained,
        "positions": positions,
        **{f"{k}_gib": round(v / GIB, 2) for k, v in parts.items()},
        "total_gib": round(total / GIB, 2),
    }


POSITIONS_PER_CLIP = (
    512  # a ~15 s clip with its text and reference (Higgs: 25 frames/s), when no budget is given
)
BIG_MODEL = 2e9  # parameters above which --grad-checkpointing defaults to on


def dry_run(config, settings) -> dict:
    """lora-train --dry-run's record: the run's settings and `estimate` for them (nothing loaded)."""
    import dataclasses
    import json

    from voxlora import families, targets
    from voxlora.modelfolder import model_dir

    folder = model_dir(config.model)
    kind = families.resolve(folder)
    shapes = targets.base_shapes(folder)
    base_only = {n: s for n, s in shapes.items() if not kind.is_codec(n)}
    if config.full:
        trained = sum(math.prod(s) for s in base_only.values())
    else:
        selection = targets.select(shapes, dataclasses.replace(settings, family=kind.name), kind)
        trained = selection.lora_params(settings.rank) + selection.trained_params()
    model_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
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
