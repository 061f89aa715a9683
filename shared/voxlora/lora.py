"""LoRA's arithmetic on plain torch tensors: scaling, init, delta, merge, unmerge, merge_state_dict.

No model here, only tensors, so every function can be checked by hand on small integer matrices.
Layout and numerics are peft's (``peft/tuners/lora/layer.py``): a linear layer with weight
W (out, in) gets A (r, in) and B (out, r), and computes

    y = x W^T + scaling * (x A^T) B^T  ==  x (W + scaling * B @ A)^T

so merging adds ``delta = scaling * (B @ A)`` to W, and unmerging subtracts it again.
``scaling`` is ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA. B starts at zero, so a fresh
adapter changes nothing until it is trained.

mlx-lm stores the same two matrices transposed (``lora_a`` (in, r), ``lora_b`` (r, out)) and keeps
the raw ``scale`` instead of alpha; `from_mlx` / `to_mlx` are the one place that layout is converted.
"""

import math

import torch

from voxlora.errors import VoxloraError

HALF = (torch.float16, torch.bfloat16)


def scaling(r: int, alpha: float, rslora: bool = False) -> float:
    """The factor LoRA's update is multiplied by.

    >>> scaling(8, 16)
    2.0
    >>> scaling(16, 16, rslora=True)   # rsLoRA: alpha / sqrt(r)
    4.0
    """
    if r <= 0:
        raise VoxloraError(f"LoRA rank must be positive, got {r}")
    return alpha / math.sqrt(r) if rslora else alpha / r


def init_lora(
    in_features: int,
    out_features: int,
    r: int,
    init: str = "kaiming",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh pair (A (r, in), B (out, r)) initialised as peft does.

    ``kaiming``: A from ``kaiming_uniform_(a=sqrt(5))``, i.e. uniform on ±1/sqrt(in) (peft's default,
    and the same bound mlx-lm uses). ``gaussian``: A normal with std 1/r (peft's "gaussian").
    B is zeros either way, so ``delta(A, B, s)`` is zero until training moves B.

    >>> A, B = init_lora(4, 3, r=2, generator=torch.Generator().manual_seed(0))
    >>> A.shape, B.shape, bool(A.abs().max() <= 0.5), bool((B == 0).all())
    (torch.Size([2, 4]), torch.Size([3, 2]), True, True)
    """
    A = torch.empty(r, in_features, dtype=dtype)  # (r, in)
    if init == "kaiming":
        torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
    elif init == "gaussian":
        torch.nn.init.normal_(A, std=1 / r, generator=generator)
    else:
        raise VoxloraError(f"unknown LoRA init {init!r} (use kaiming or gaussian)")
    B = torch.zeros(out_features, r, dtype=dtype)  # (out, r)
    return A, B


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """fp32 for half-precision inputs (as peft does on CPU), else the widest input dtype."""
    dtype = torch.float32
    for t in tensors:
        if t.dtype not in HALF:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def delta(A: torch.Tensor, B: torch.Tensor, scaling: float) -> torch.Tensor:
    """``scaling * (B @ A)``, the (out, in) update LoRA adds to W; fp32 for half-precision inputs.

    >>> delta(torch.tensor([[1., 2.]]), torch.tensor([[3.], [4.]]), 0.5)
    tensor([[1.5000, 3.0000],
            [2.0000, 4.0000]])
    """
    if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
        raise VoxloraError(f"LoRA A {tuple(A.shape)} and B {tuple(B.shape)} do not share a rank")
    dtype = _compute_dtype(A, B)
    return (B.to(dtype) @ A.to(dtype)) * scaling  # (out, r) @ (r, in) -> (out, in)


def _apply(W: torch.Tensor, A, B, scaling: float, sign: int, name: str, inplace: bool) -> torch.Tensor:
    if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
        raise VoxloraError(f"{name}: LoRA A {tuple(A.shape)} and B {tuple(B.shape)} do not share a rank")
    if (B.shape[0], A.shape[1]) != tuple(W.shape):
        raise VoxloraError(
            f"{name}: LoRA update {(B.shape[0], A.shape[1])} does not fit the weight {tuple(W.shape)}"
        )
    dtype = _compute_dtype(W, A, B)
    # (out, in): W itself when the caller owns it and it is already in the compute dtype, else a copy
    out = W if inplace and W.dtype == dtype else W.to(dtype, copy=True)
    out.addmm_(B.to(dtype), A.to(dtype), alpha=sign * scaling)  # out += s * (B @ A), no (out, in) temporary
    out = out.to(W.dtype)
    # Checked in W's own dtype (fp16 overflows at 65504) before the result is returned, as peft's
    # merge(safe_merge=True). min and max propagate NaN and inf, without a mask as large as W.
    if not all(torch.isfinite(m) for m in torch.aminmax(out)):
        raise VoxloraError(f"{name}: merging gives NaN or inf (a broken adapter, or overflow in {W.dtype})")
    return out


def merge(
    W: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    scaling: float,
    name: str = "weight",
    inplace: bool = False,
):
    """``W + scaling * (B @ A)`` in W's dtype (summed in fp32 for half precision).

    Refuses (VoxloraError naming ``name``) a result with NaN or inf instead of returning it.
    A new tensor unless ``inplace``: then, when W is already in the compute dtype (fp32 W with fp32
    or half A, B), the sum is written into W itself, saving a copy of W. Only for a W nobody else
    holds (lora-merge's freshly read tensors): W is modified even when the result is refused.

    >>> W = torch.tensor([[1., 0.], [0., 1.]])
    >>> merge(W, torch.tensor([[1., 2.]]), torch.tensor([[3.], [4.]]), 0.5)
    tensor([[2.5000, 3.0000],
            [2.0000, 5.0000]])
    """
    return _apply(W, A, B, scaling, +1, name, inplace)


def unmerge(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scaling: float, name: str = "weight"):
    """``W - scaling * (B @ A)``: undoes `merge` (exactly for integers, to rounding for floats)."""
    return _apply(W, A, B, scaling, -1, name, inplace=False)


def delta_norm(A: torch.Tensor, B: torch.Tensor, scaling: float) -> float:
    """Frobenius norm of ``scaling * (B @ A)`` without forming the (out, in) matrix.

    ``|BA|_F^2 = trace(B^T B  A A^T)``: two (r, r) Gram matrices, cheap even for CSM-1B's MLPs.

    >>> delta_norm(torch.tensor([[1., 2.]]), torch.tensor([[3.], [4.]]), 1.0)   # |[[3,6],[4,8]]|
    11.180339887498949
    """
    A64, B64 = A.double(), B.double()
    sq = torch.trace((B64.T @ B64) @ (A64 @ A64.T)).clamp_min(0)  # (r, r) @ (r, r)
    return abs(scaling) * math.sqrt(float(sq))


def merged_tensor(name: str, tensor: torch.Tensor, adapter, inplace: bool = False) -> torch.Tensor:
    """One base tensor with the adapter applied: replaced if trained directly, then LoRA merged.

    ``adapter`` is anything with ``lora`` ({module path: (A, B)}), ``trained`` ({tensor name:
    tensor}) and ``scaling`` (voxlora.adapter.Adapter). A name the adapter does not touch comes back
    as it is (the same object). ``inplace``: ``tensor`` is the caller's own (just read, held by
    nobody else), so a LoRA merge may write into it (see `merge`); a replaced tensor never is.
    """
    if name in adapter.trained:
        tensor = adapter.trained[name].to(tensor.dtype)  # may be the adapter's own: not in place
        inplace = False
    module, _, leaf = name.rpartition(".")
    if leaf == "weight" and module in adapter.lora:
        A, B = adapter.lora[module]
        tensor = merge(tensor, A, B, adapter.scaling, name=module, inplace=inplace)
    return tensor


def merge_state_dict(state_dict: dict[str, torch.Tensor], adapter) -> dict[str, torch.Tensor]:
    """The base state dict with the adapter merged in (torchtune's ``get_merged_lora_ckpt``).

    Same keys, same dtypes; LoRA modules become ``W + scaling * B @ A``, directly trained tensors
    replace the base's. Every adapter key must land on a key of ``state_dict``.

    >>> from types import SimpleNamespace
    >>> ad = SimpleNamespace(lora={"fc": (torch.ones(1, 2), torch.ones(2, 1))}, trained={}, scaling=2.0)
    >>> merge_state_dict({"fc.weight": torch.zeros(2, 2), "fc.bias": torch.ones(2)}, ad)["fc.weight"]
    tensor([[2., 2.],
            [2., 2.]])
    """
    missing = [f"{m}.weight" for m in adapter.lora if f"{m}.weight" not in state_dict]
    missing += [n for n in adapter.trained if n not in state_dict]
    if missing:
        raise VoxloraError(f"adapter keys not in the base: {', '.join(sorted(missing))}")
    return {name: merged_tensor(name, t, adapter) for name, t in state_dict.items()}


def from_mlx(
    lora_a: torch.Tensor, lora_b: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """mlx-lm's (lora_a (in, r), lora_b (r, out), scale) as peft's (A (r, in), B (out, r), scaling).

    mlx-lm computes ``y + scale * (x @ lora_a) @ lora_b``, so A = lora_a^T, B = lora_b^T and the
    scaling is the raw scale (as an alpha: ``alpha = scale * r`` without rsLoRA).
    """
    return lora_a.T.contiguous(), lora_b.T.contiguous(), float(scale)


def to_mlx(A: torch.Tensor, B: torch.Tensor, scaling: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The inverse of `from_mlx`: (A (r, in), B (out, r), scaling) -> (lora_a, lora_b, scale)."""
    return A.T.contiguous(), B.T.contiguous(), float(scaling)
