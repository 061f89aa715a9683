"""CSM checkpoints of benchmark sizes with random weights, in sesame/csm-1b's layout (never in tests).

`write_full_csm` writes the real CSM-1B config (about 6 GB in fp32); `mid_config` a few hundred
million parameters. The tokenizer and processor files are the demo model's (`voxlora.demo_model`).
"""

import json
from pathlib import Path

from voxlora.demo_model import _set_generation_defaults, write_processor


def mid_config():
    """A CSM-shaped config of a few hundred million parameters (benchmarks: shows where time goes).

    The real Mimi codec and CSM-1B's audio vocabulary, a narrower and shallower backbone and decoder.
    """
    from transformers import CsmConfig, CsmDepthDecoderConfig

    decoder = CsmDepthDecoderConfig(
        backbone_hidden_size=1024,
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
    )
    return CsmConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=8,
        num_attention_heads=16,
        num_key_value_heads=4,
        depth_decoder_config=decoder.to_dict(),
    )


def write_full_csm(path, seed: int = 0, dtype: str = "float32") -> Path:
    """The real CSM-1B config with random weights (benchmarks only: ~6 GB in fp32)."""
    from transformers import CsmConfig

    return write_random_csm(path, CsmConfig(), seed=seed, dtype=dtype)


def _checkpoint_names(model, state: dict) -> dict:
    """``state`` under the names a checkpoint stores (save_pretrained reverts transformers' load-time
    renames, e.g. Mimi's ``encoder.encoder_transformer.`` back to ``encoder_transformer.``), so the
    MLX backend, which reads checkpoint names, loads these models too."""
    from transformers.core_model_loading import revert_weight_conversion

    reverted = revert_weight_conversion(model, dict(state))
    if set(map(id, reverted.values())) != set(map(id, state.values())):  # not plain renames: as they are
        return state
    return reverted


def write_random_csm(path, config, seed: int = 0, dtype: str = "float32") -> Path:
    """Any CsmConfig with random weights N(0, 0.02) in sesame/csm-1b's layout (benchmarks, never tests).

    Tensors are drawn one at a time and written shard by shard, so memory stays near one shard.
    The tokenizer is the byte-level one, its special tokens at the config's ids.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import CsmForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        model = CsmForConditionalGeneration(config)
    _set_generation_defaults(model)
    config.save_pretrained(path)
    model.generation_config.save_pretrained(path)
    write_processor(path, special_start=config.bos_token_id)

    torch_dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(seed)
    shard_limit = 2 * 1024**3
    shards, shard, size = [], {}, 0
    # tied weights are stored once, as save_pretrained does
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    state = {n: p for n, p in model.state_dict().items() if n not in tied}
    for name, p in _checkpoint_names(model, state).items():
        t = (torch.randn(p.shape, generator=gen) * 0.02).to(torch_dtype)
        if name.endswith("norm.weight") or "layer_scale" in name:
            t = torch.ones(p.shape, dtype=torch_dtype)  # norms at 1, as a trained model's roughly are
        nbytes = t.numel() * t.element_size()
        if shard and size + nbytes > shard_limit:
            shards.append(shard)
            shard, size = {}, 0
        shard[name] = t
        size += nbytes
    shards.append(shard)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, path / fname, metadata={"format": "pt"})
        for name, t in shard.items():
            weight_map[name] = fname
            total += t.numel() * t.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return path


def random_bf16_csm(workdir: Path, size: str) -> Path:
    """A random CSM in bf16 (``full``: CSM-1B's sizes, else `mid_config`'s) under ``workdir``, written
    once and shared by the benchmarks that use it (mlx-memory, gpu)."""
    model = Path(workdir) / f"csm-{size}-random-bf16"
    if not (model / "model.safetensors.index.json").is_file():
        if size == "full":
            write_full_csm(model, seed=0, dtype="bfloat16")
        else:
            write_random_csm(model, mid_config(), seed=0, dtype="bfloat16")
    return model
