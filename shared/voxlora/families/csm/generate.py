"""voxlora's own CSM generation loop: several prompts at once, a static KV cache, a generator per row.

It follows transformers' ``CsmForConditionalGeneration.generate`` (``generation_csm.py``) step for
step, on the model's own modules (so peft's LoRA layers and merged weights apply as they do there):

1. the backbone reads the prompt (text, and context audio already merged into embeddings);
2. per frame: codebook 0 is sampled from ``lm_head`` of the backbone's last (normed) hidden state;
   the depth decoder starts from that hidden state (its position 0) and codebook 0 (position 1)
   and samples codebooks 1..31 one at a time, each through its own head (``codebooks_head``);
3. the frame's 32 codes, embedded and summed, are the backbone's next input.

Sampling is `sample.sampling_kwargs`'s: the codec's undecodable ids suppressed, then temperature and
top-k (temperature 0: argmax), in float32, drawn with ``torch.multinomial`` from the row's own
``torch.Generator`` seeded with its request's seed. A row that made an end-of-audio frame (every
codebook but the last == eos) or its ``max_frames`` stops; the others go on.

Why the same seed gives the same codes alone or in any batch: each row keeps its own positions
(its prompt at cache slots 0..L-1, frame t at slot L+t; a shorter prompt is padded on the right, and
what the padding writes is overwritten before any query may see it), the key/value cache has the
same length for a row whatever shares its batch (`cache_length`), and keys a query may not see are
masked, so a row's attention is the same sums over the same slots. With one row this is
transformers' generate with its random draws in the same order: the same codes (tests check both).

The caches are preallocated (B, heads, S, head_dim) tensors written in place at per-row slots:
every frame step has the same shapes, so a CUDA graph or ``torch.compile`` could capture it.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.models.csm.modeling_csm import apply_rotary_pos_emb

from voxlora.families.csm.sample import undecodable_ids

CACHE_BLOCK = 256  # backbone cache lengths are multiples of this (at most max_position_embeddings)


@dataclass
class Row:
    """One prompt to continue: its embeddings (L, hidden), how many frames at most, its seed."""

    embeds: torch.Tensor
    max_frames: int
    seed: int


def prompt_embeds(model, inputs) -> torch.Tensor:
    """The backbone's input embeddings (L, hidden) of one processed prompt: text tokens, and the
    context clips encoded by the codec and embedded, as transformers merges them."""
    merged = model._merge_input_ids_with_input_values(
        input_ids=inputs["input_ids"],
        input_values=inputs.get("input_values"),
        input_values_cutoffs=inputs.get("input_values_cutoffs"),
    )
    return merged["inputs_embeds"][0]


def cache_length(needed: int, limit: int) -> int:
    """The backbone cache's length for ``needed`` slots: a multiple of `CACHE_BLOCK`, at most ``limit``.

    >>> cache_length(130, 2048), cache_length(257, 2048), cache_length(2000, 2048)
    (256, 512, 2048)
    """
    return min(limit, CACHE_BLOCK * math.ceil(needed / CACHE_BLOCK))


class KVCache:
    """Preallocated keys and values (layers, B, kv_heads, S, head_dim), written in place per row."""

    def __init__(self, n_layers, batch, kv_heads, length, head_dim, dtype, device):
        shape = (n_layers, batch, kv_heads, length, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.slots = torch.arange(length, device=device)  # (S,)

    def mask(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, S) True where a query at ``positions`` (B, T) may see a key: slots up to its own."""
        return (self.slots <= positions[..., None]).unsqueeze(1)


def _attention(q, k, v, mask, scale: float) -> torch.Tensor:
    """Grouped-query attention of ``q`` (B, heads, T, D) over the whole cache ``k``, ``v``
    (B, kv_heads, S, D) where ``mask`` (B, 1, T, S) allows (head h reads kv head h // group, as
    transformers' ``repeat_kv``). One SDPA call: fewer launches than eager attention's five ops,
    and as fast on the CPU (measured on the mid-size CSM); eager-style math gave the same codes in
    this module's tests."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)


def _layers(stack, h, positions, cache: KVCache, mask) -> torch.Tensor:
    """``h`` (B, T, hidden) through the decoder layers of ``stack`` (a CsmBackboneModel or
    CsmDepthDecoderModel), keys/values written at ``positions`` (B, T), then the final norm."""
    cos, sin = stack.rotary_emb(h, positions)  # (B, T, head_dim)
    B, T, _ = h.shape
    for i, layer in enumerate(stack.layers):
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        q = attn.q_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)  # (B, heads, T, D)
        k = attn.k_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)  # (B, kv_heads, T, D)
        v = attn.v_proj(x).view(B, T, -1, attn.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        at = positions[:, None, :, None].expand_as(k)
        cache.k[i].scatter_(2, at, k)
        cache.v[i].scatter_(2, at, v)
        out = _attention(q, cache.k[i], cache.v[i], mask, attn.scaling)  # (B, heads, T, D)
        h = h + attn.o_proj(out.transpose(1, 2).reshape(B, T, -1))
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return stack.norm(h)


class Sampler:
    """`sample.sampling_kwargs`'s sampler on float32 logits (B, V), one generator per row."""

    def __init__(self, config, temperature: float, top_k: int):
        self.suppress = torch.tensor(undecodable_ids(config), dtype=torch.long)
        self.temperature, self.top_k = float(temperature), int(top_k)

    def __call__(self, logits: torch.Tensor, generators: list) -> torch.Tensor:
        scores = logits.float()
        if self.suppress.device != scores.device:  # moved once, not per call
            self.suppress = self.suppress.to(scores.device)
        scores = scores.index_fill(-1, self.suppress, -math.inf)
        if self.temperature == 0:
            return scores.argmax(-1)  # (B,)
        scores = scores / self.temperature
        if self.top_k:
            kth = torch.topk(scores, min(self.top_k, scores.shape[-1]))[0][..., -1, None]
            scores = scores.masked_fill(scores < kth, -math.inf)
        probs = F.softmax(scores, dim=-1)
        return torch.cat(
            [torch.multinomial(probs[b : b + 1], 1, generator=g)[:, 0] for b, g in enumerate(generators)]
        )  # (B,)


class CsmGenerator:
    """Audio codes for a batch of prompts on one CsmForConditionalGeneration (any adapter applied).

    >>> gen = CsmGenerator(model, temperature=0.9, top_k=50)           # doctest: +SKIP
    >>> codes = gen.generate([Row(prompt_embeds(model, inputs), 125, seed=0)])   # doctest: +SKIP
    >>> codes[0].shape                                                 # doctest: +SKIP
    torch.Size([T, 32])
    """

    def __init__(self, model, temperature: float, top_k: int):
        self.model = model
        self.config = model.config
        self.sample = Sampler(model.config, temperature, top_k)
        self.K = int(model.config.num_codebooks)
        self.eos = int(model.config.codebook_eos_token_id)
        self.limit = int(model.config.max_position_embeddings)

    def _cache(self, stack, batch: int, length: int) -> KVCache:
        attn = stack.layers[0].self_attn
        kv_heads = attn.k_proj.out_features // attn.head_dim
        p = next(stack.parameters())
        return KVCache(len(stack.layers), batch, kv_heads, length, attn.head_dim, p.dtype, p.device)

    @torch.inference_mode()
    def generate(self, rows: list[Row]) -> list[torch.Tensor]:
        """Codes (T_b, K) per row, in order: up to and with its end-of-audio frame, or its max_frames."""
        model, device = self.model, self.model.lm_head.weight.device
        backbone, depth = model.backbone_model, model.depth_decoder.model
        B, lengths = len(rows), [int(r.embeds.shape[0]) for r in rows]
        budgets = torch.tensor([r.max_frames for r in rows], device=device)
        generators = [torch.Generator(device=device).manual_seed(int(r.seed)) for r in rows]
        needed = max(n + r.max_frames for n, r in zip(lengths, rows, strict=True))
        cache = self._cache(backbone, B, cache_length(needed, self.limit))
        end = cache.k.shape[3] - 1  # a stopped row may write on past its budget: into its last slot
        depth_cache = self._cache(depth, B, self.K)

        embeds = torch.zeros(B, max(lengths), rows[0].embeds.shape[-1], dtype=cache.k.dtype, device=device)
        for b, r in enumerate(rows):  # right-padded: each row's prompt at positions 0..L-1
            embeds[b, : lengths[b]] = r.embeds.to(device, cache.k.dtype)
        positions = torch.arange(max(lengths), device=device).expand(B, -1)  # (B, L)
        h = _layers(backbone, embeds, positions, cache, cache.mask(positions))  # (B, L, hidden)
        last = torch.tensor(lengths, device=device) - 1  # (B,)
        h = h[torch.arange(B, device=device), last]  # (B, hidden): each row's last prompt position

        frames, done = [], torch.zeros(B, dtype=torch.bool, device=device)
        for t in range(int(budgets.max())):
            codes = self._frame(h, generators, depth_cache)  # (B, K)
            frames.append(codes)
            done |= (codes[:, :-1] == self.eos).all(-1) | (budgets <= t + 1)
            if bool(done.all()):
                break
            positions = (last + 1 + t).clamp(max=end)[:, None]  # (B, 1)
            x = backbone.embed_tokens(codes[:, None, :])  # (B, 1, hidden): the frame's summed embeddings
            h = _layers(backbone, x, positions, cache, cache.mask(positions))[:, -1]
        return [self._row_codes(frames, b, rows[b].max_frames) for b in range(B)]

    def _frame(self, h, generators, cache: KVCache) -> torch.Tensor:
        """One frame's codes (B, K) from the backbone's last hidden state ``h`` (B, hidden)."""
        model, depth = self.model, self.model.depth_decoder
        B, vocab = h.shape[0], int(depth.config.vocab_size)
        c0 = self.sample(model.lm_head(h), generators)  # (B,)
        x = depth.model.embed_tokens(
            torch.stack([torch.zeros_like(c0), c0], dim=1)
        )  # (B, 2, backbone hidden)
        x[:, 0] = h
        codes = [c0]
        positions = torch.arange(2, device=h.device).expand(B, -1)  # (B, 2)
        for i in range(1, self.K):
            x = depth.model.inputs_embeds_projector(x)
            out = _layers(depth.model, x, positions, cache, cache.mask(positions))[:, -1]  # (B, hidden)
            logits = F.linear(out, depth.codebooks_head.weight[i - 1].T)  # codebook i's head
            codes.append(self.sample(logits, generators))
            if i + 1 < self.K:
                x = depth.model.embed_tokens(codes[-1] + i * vocab)[:, None]  # (B, 1, backbone hidden)
                positions = torch.full((B, 1), i + 1, device=h.device)
        return torch.stack(codes, dim=1)

    def _row_codes(self, frames, b: int, max_frames: int) -> torch.Tensor:
        """Row ``b``'s frames: up to its first end-of-audio frame (kept), at most ``max_frames``."""
        codes = torch.stack([f[b] for f in frames])[:max_frames]  # (T, K)
        is_eos = (codes[:, :-1] == self.eos).all(-1)
        if is_eos.any():
            codes = codes[: int(is_eos.nonzero()[0, 0]) + 1]
        return codes.cpu()
