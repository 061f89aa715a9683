"""LoRA on the MLX model: mlx-lm's layer, and voxlora's one adapter format in and out.

`LoRALinear` is mlx-lm's (``mlx_lm/tuner/lora.py``): ``y = linear(x) + scale * (dropout(x) @ lora_a)
@ lora_b`` with ``lora_a`` (in, r) and ``lora_b`` (r, out). That is peft's math with A = lora_a^T,
B = lora_b^T and scale = peft's scaling (alpha / r, or alpha / sqrt(r) with rsLoRA); the layout is
converted only by `voxlora.lora.to_mlx` / `from_mlx`. Adapters come in and go out as
`voxlora.adapter.Adapter` (peft's names and layout), so one trained here loads with
``PeftModel.from_pretrained`` on the torch model, and the reverse.

A fresh adapter (`new_adapter`) is drawn by `voxlora.adapter.fresh_adapter`, as
`peft_bridge.new_adapter_for`'s is: both backends start from identical tensors.
"""

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import torch
from mlx.utils import tree_flatten, tree_unflatten

from voxlora import lora, targets
from voxlora.adapter import Adapter, fresh_adapter, require_fits
from voxlora.backends.mlx.csm import BACKBONE_AUDIO, hf_shapes, to_hf_name, to_mlx_name
from voxlora.errors import VoxloraError


class LoRALinear(nn.Module):
    """A linear layer plus a low-rank update (mlx-lm's layout: lora_a (in, r), lora_b (r, out))."""

    @staticmethod
    def from_base(linear: nn.Linear, r: int = 8, dropout: float = 0.0, scale: float = 2.0) -> "LoRALinear":
        out_dims, in_dims = linear.weight.shape
        layer = LoRALinear(in_dims, out_dims, r=r, dropout=dropout, scale=scale)
        layer.linear = linear
        return layer

    def __init__(
        self, input_dims: int, output_dims: int, r: int = 8, dropout: float = 0.0, scale: float = 2.0
    ):
        super().__init__()
        self.linear = nn.Linear(input_dims, output_dims, bias=False)
        self.dropout = nn.Dropout(p=dropout)
        self.scale = scale
        bound = 1 / math.sqrt(input_dims)  # the bound of peft's kaiming_uniform_(a=sqrt(5))
        self.lora_a = mx.random.uniform(low=-bound, high=bound, shape=(input_dims, r))
        self.lora_b = mx.zeros((r, output_dims))

    def __call__(self, x: mx.array) -> mx.array:
        y = self.linear(x)
        z = (self.dropout(x) @ self.lora_a) @ self.lora_b  # (..., in) @ (in, r) @ (r, out)
        return y + (self.scale * z).astype(x.dtype)

    def fuse(self) -> nn.Linear:
        """A plain linear with ``W + scale * lora_b^T @ lora_a^T`` (peft's ``W + scaling * B @ A``)."""
        weight = self.linear.weight
        delta = (self.scale * (self.lora_b.T @ self.lora_a.T)).astype(mx.float32)  # (out, in)
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in self.linear)
        fused.weight = (weight.astype(mx.float32) + delta).astype(weight.dtype)
        if "bias" in self.linear:
            fused.bias = self.linear.bias
        return fused


def _np(t: torch.Tensor) -> mx.array:
    return mx.array(t.detach().to(torch.float32).numpy())


def _torch(a: mx.array) -> torch.Tensor:
    return torch.from_numpy(np.array(a.astype(mx.float32)))


def _module(model, path: str):
    node = model
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def lora_layers(model) -> dict[str, LoRALinear]:
    """{mlx-audio module path: LoRALinear} of every LoRA layer in ``model``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def _base_tables(model) -> dict:
    """{module path: base weight} of the tensors the current adapter replaced (kept off the tree)."""
    return model.__dict__.setdefault("_voxlora_base_tables", {})


def remove_adapter(model) -> None:
    """Put the plain linears and the base's tables back: the base model again."""
    layers = lora_layers(model)
    if layers:
        model.update_modules(tree_unflatten([(name, m.linear) for name, m in layers.items()]))
    tables = _base_tables(model)
    for path, weight in tables.items():
        if path == "decoder_audio_embeddings":  # split by the adapter: tied again
            model.pop("decoder_audio_embeddings")
        else:
            _module(model, path).weight = weight
    tables.clear()


def apply_adapter(model, adapter: Adapter, trainable: bool = False) -> tuple[object, int]:
    """Wrap ``model``'s linears with the adapter's LoRA and set its trained tensors; (model, tensors set).

    Every adapter key is checked against the model first (`adapter.require_fits`, one error listing
    all mismatches), so an adapter for another base is refused before anything changes. A previous
    adapter is removed first. ``trainable=True`` leaves only the adapter's tensors trainable.
    """
    require_fits(adapter, hf_shapes(model), "adapter")
    remove_adapter(model)
    wrapped = []
    for module, (A, B) in adapter.lora.items():
        path = to_mlx_name(module)
        lora_a, lora_b, scale = lora.to_mlx(A, B, adapter.scaling)
        layer = LoRALinear.from_base(_module(model, path), r=A.shape[0], dropout=adapter.dropout, scale=scale)
        layer.lora_a, layer.lora_b = _np(lora_a), _np(lora_b)
        wrapped.append((path, layer))
    model.update_modules(tree_unflatten(wrapped))
    tables = _base_tables(model)
    for name, tensor in adapter.trained.items():
        path = to_mlx_name(name).removesuffix(".weight")
        if name == BACKBONE_AUDIO and "decoder_audio_embeddings" not in model:
            # CSM ties the two audio tables; training the backbone's leaves the decoder's as it was
            model.decoder_audio_embeddings = nn.Embedding(*model.audio_embeddings.weight.shape)
            model.decoder_audio_embeddings.weight = model.audio_embeddings.weight
            tables["decoder_audio_embeddings"] = None
        tables[path] = _module(model, path).weight
        _module(model, path).weight = _np(tensor).astype(tables[path].dtype)
    model.freeze()
    if trainable:
        for _, layer in wrapped:
            layer.unfreeze(keys=["lora_a", "lora_b"])
        for name in adapter.trained:
            _module(model, to_mlx_name(name).removesuffix(".weight")).unfreeze(keys=["weight"])
    mx.eval(model.parameters())
    return model, 2 * len(adapter.lora) + len(adapter.trained)


def adapter_from_model(model, like: Adapter) -> Adapter:
    """The adapter's current tensors taken out of ``model`` (after training) as a peft-layout Adapter.

    Settings and meta come from ``like`` (the adapter that was applied); tensors are fp32 copies.
    """
    pairs = {}
    for path, layer in lora_layers(model).items():
        A, B, _ = lora.from_mlx(_torch(layer.lora_a), _torch(layer.lora_b), layer.scale)
        pairs[to_hf_name(path)] = (A, B)
    trained = {
        name: _torch(_module(model, to_mlx_name(name).removesuffix(".weight")).weight)
        for name in like.trained
    }
    if set(pairs) != set(like.lora):
        raise VoxloraError("the model carries other LoRA layers than the adapter it was given")
    meta = {**like.meta, "backend": "mlx"}
    return Adapter(
        r=like.r,
        alpha=like.alpha,
        lora={m: pairs[m] for m in like.lora},
        trained=trained,
        dropout=like.dropout,
        rslora=like.rslora,
        base_model=like.base_model,
        meta=meta,
        format="voxlora",
    )


def new_adapter(bundle, settings, seed: int = 0, base_model: str | None = None) -> Adapter:
    """A fresh adapter for a loaded `MlxCsm`: the same tensors `peft_bridge.new_adapter_for` draws.

    Drawn by `voxlora.adapter.fresh_adapter` (A from ``seed`` in `targets.select`'s order, B zero);
    trained embeddings start as copies of the base's.
    """
    from voxlora.peft_bridge import fingerprints

    selection = targets.select(hf_shapes(bundle.model), settings)
    params = dict(tree_flatten(bundle.model.parameters()))
    trained = {name: _torch(params[to_mlx_name(name)]) for name in selection.trained}
    base_model = base_model or str(bundle.path.resolve())
    fingerprint, identity = fingerprints(bundle.path)
    return fresh_adapter(selection.lora, trained, settings, seed, base_model, fingerprint, "mlx", identity)


def load_adapter_into(model, path, trainable: bool = False):
    """`voxlora.adapter.read_adapter` then `apply_adapter`: any adapter folder voxlora reads."""
    from voxlora.adapter import read_adapter

    return apply_adapter(model, read_adapter(path), trainable=trainable)


def merge_adapter(model) -> None:
    """Fuse every LoRA layer into its linear in place (inference: no per-call LoRA cost)."""
    layers = lora_layers(model)
    if layers:
        model.update_modules(tree_unflatten([(name, m.fuse()) for name, m in layers.items()]))
    _base_tables(model).clear()
