"""LoRA's arithmetic by hand-worked small examples (voxlora.lora)."""

import math
from types import SimpleNamespace

import pytest
import torch
from voxlora import lora
from voxlora.errors import VoxloraError

# A 2x3 weight (out=2, in=3) and a rank-1 update worked out by hand:
#   B @ A = [[1], [-1]] @ [[1, 0, 2]] = [[1, 0, 2], [-1, 0, -2]];  scaling 2 doubles it.
W = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
A = torch.tensor([[1.0, 0.0, 2.0]])  # (r=1, in=3)
B = torch.tensor([[1.0], [-1.0]])  # (out=2, r=1)
W_MERGED = torch.tensor([[3.0, 2.0, 7.0], [2.0, 5.0, 2.0]])


def test_scaling():
    assert lora.scaling(8, 16) == 2.0
    assert lora.scaling(4, 8) == 2.0
    assert lora.scaling(16, 16, rslora=True) == 4.0  # alpha / sqrt(r)
    assert lora.scaling(8, 16, rslora=True) == pytest.approx(16 / math.sqrt(8))
    with pytest.raises(VoxloraError, match="rank must be positive"):
        lora.scaling(0, 16)


def test_merge_by_hand():
    assert torch.equal(lora.delta(A, B, 2.0), torch.tensor([[2.0, 0.0, 4.0], [-2.0, 0.0, -4.0]]))
    assert torch.equal(lora.merge(W, A, B, 2.0), W_MERGED)
    assert torch.equal(W, torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))  # the input is not modified


def test_zero_B_changes_nothing():
    A0, B0 = lora.init_lora(3, 2, r=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lora.merge(W, A0, B0, 2.0), W)


def test_unmerge_undoes_merge():
    assert torch.equal(lora.unmerge(W_MERGED, A, B, 2.0), W)
    gen = torch.Generator().manual_seed(1)
    Wr, Ar, Br = (torch.randn(s, generator=gen) for s in [(16, 8), (4, 8), (16, 4)])
    assert torch.allclose(lora.unmerge(lora.merge(Wr, Ar, Br, 0.5), Ar, Br, 0.5), Wr, atol=1e-6)


def test_merged_weight_equals_applying_lora():
    # y = x W^T + scaling * (x A^T) B^T, the way peft's forward computes it, on integer values: exact
    x = torch.tensor([[1.0, -1.0, 2.0], [0.0, 3.0, 1.0]], dtype=torch.float64)
    Wd, Ad, Bd = W.double(), A.double(), B.double()
    applied = x @ Wd.T + 2.0 * (x @ Ad.T) @ Bd.T
    assert torch.equal(x @ lora.merge(Wd, Ad, Bd, 2.0).T, applied)


def test_half_precision_is_summed_in_fp32_and_rounded_once():
    # small integers: exact in bf16 and in fp32 sums, so only the final rounding to bf16 can differ
    gen = torch.Generator().manual_seed(2)
    Wh, Ah, Bh = (
        torch.randint(-100, 100, s, generator=gen).to(torch.bfloat16) for s in [(32, 16), (4, 16), (32, 4)]
    )
    d = lora.delta(Ah, Bh, 0.5)
    assert d.dtype == torch.float32
    merged = lora.merge(Wh, Ah, Bh, 0.5)
    assert merged.dtype == torch.bfloat16
    exact = Wh.double() + 0.5 * (Bh.double() @ Ah.double())
    assert torch.equal(merged, exact.to(torch.bfloat16))
    assert not torch.equal(exact, exact.to(torch.bfloat16).double())  # there was rounding to do


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_is_refused(bad):
    A_bad = A.clone()
    A_bad[0, 1] = bad
    with pytest.raises(VoxloraError, match="q_proj: merging gives NaN or inf"):
        lora.merge(W, A_bad, B, 2.0, name="q_proj")


def test_fp16_overflow_is_refused():
    with pytest.raises(VoxloraError, match="overflow in torch.float16"):
        lora.merge(W.half(), A.half() * 200, B.half() * 200, 2.0)


def test_shapes_that_do_not_fit_are_refused():
    with pytest.raises(VoxloraError, match=r"does not fit the weight \(2, 3\)"):
        lora.merge(W, torch.ones(1, 4), B, 1.0)
    with pytest.raises(VoxloraError, match="do not share a rank"):
        lora.delta(torch.ones(2, 3), B, 1.0)
    with pytest.raises(VoxloraError, match="fc: LoRA A"):
        lora.merge(W, torch.ones(2, 3), B, 1.0, name="fc")


def test_kaiming_init_matches_peft_bounds_and_distribution():
    r, fan_in = 256, 64
    A0, B0 = lora.init_lora(fan_in, 32, r, generator=torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(
        fan_in
    )  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3), bound sqrt(3) * gain / sqrt(fan_in)
    assert A0.shape == (r, fan_in) and B0.shape == (32, r)
    assert torch.equal(B0, torch.zeros(32, r))
    assert A0.abs().max() <= bound and A0.abs().max() > 0.99 * bound
    assert abs(A0.mean().item()) < 0.05 * bound
    assert A0.var().item() == pytest.approx(bound**2 / 3, rel=0.05)  # uniform's variance

    # peft's own init of the same shape stays within the same bound
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    net = get_peft_model(
        torch.nn.Sequential(torch.nn.Linear(fan_in, 32)), LoraConfig(r=r, target_modules=["0"])
    )
    peft_A = net.base_model.model[0].lora_A["default"].weight
    assert peft_A.shape == A0.shape
    assert peft_A.abs().max() <= bound and peft_A.var().item() == pytest.approx(bound**2 / 3, rel=0.05)


def test_gaussian_init_has_std_one_over_r():
    A0, B0 = lora.init_lora(64, 8, r=16, init="gaussian", generator=torch.Generator().manual_seed(0))
    assert A0.std().item() == pytest.approx(1 / 16, rel=0.1)
    assert not B0.any()


def test_init_is_deterministic_from_the_generator():
    a1, _ = lora.init_lora(8, 8, 2, generator=torch.Generator().manual_seed(5))
    a2, _ = lora.init_lora(8, 8, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a1, a2)
    with pytest.raises(VoxloraError, match="unknown LoRA init"):
        lora.init_lora(8, 8, 2, init="orthogonal")


def test_delta_norm_equals_the_norm_of_the_update():
    gen = torch.Generator().manual_seed(3)
    Ar, Br = torch.randn(4, 24, generator=gen), torch.randn(12, 4, generator=gen)
    expected = torch.linalg.norm(1.5 * (Br.double() @ Ar.double())).item()  # the update, formed in full
    assert lora.delta_norm(Ar, Br, 1.5) == pytest.approx(expected, rel=1e-5)
    assert lora.delta_norm(A, torch.zeros_like(B), 2.0) == 0.0


def test_merge_state_dict_like_torchtune():
    adapter = SimpleNamespace(
        lora={"fc": (A, B)}, trained={"emb.weight": torch.full((2, 2), 7.0)}, scaling=2.0
    )
    base = {
        "fc.weight": W,
        "fc.bias": torch.ones(2),
        "emb.weight": torch.zeros(2, 2),
        "norm.weight": torch.ones(3),
    }
    merged = lora.merge_state_dict(base, adapter)
    assert list(merged) == list(base)
    assert torch.equal(merged["fc.weight"], W_MERGED)
    assert torch.equal(merged["emb.weight"], torch.full((2, 2), 7.0))
    assert merged["norm.weight"] is base["norm.weight"] and merged["fc.bias"] is base["fc.bias"]
    with pytest.raises(VoxloraError, match="adapter keys not in the base: fc.weight"):
        lora.merge_state_dict(
            {"other.weight": W}, SimpleNamespace(lora={"fc": (A, B)}, trained={}, scaling=1.0)
        )


def test_mlx_layout_is_the_transpose_with_a_raw_scale():
    lora_a, lora_b, scale = lora.to_mlx(A, B, 2.0)
    assert lora_a.shape == (3, 1) and lora_b.shape == (1, 2) and scale == 2.0
    x = torch.tensor([[1.0, 2.0, 3.0]])
    # mlx-lm: y + scale * (x @ lora_a) @ lora_b  ==  x @ delta^T
    assert torch.equal(scale * (x @ lora_a) @ lora_b, x @ (2.0 * (B @ A)).T)
    A2, B2, s2 = lora.from_mlx(lora_a, lora_b, scale)
    assert torch.equal(A2, A) and torch.equal(B2, B) and s2 == 2.0
