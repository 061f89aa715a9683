"""CSM's training loss on prepared batches: the same numbers as `CsmForConditionalGeneration`,
computed without the work it does not need.

transformers' forward (``modeling_csm.py``) runs Mimi on the raw audio every step, embeds all 32
codebooks of every position, computes backbone logits at every position and runs the depth decoder
on every frame it is given. Here, on cached codes:

* backbone: text positions embed text ids, audio positions the sum of their K codebook embeddings
  (``embedding_bag``, no (B, T, K, H) intermediate); position t predicts codebook 0 of position
  t + 1 for every audio frame and the end frame, and ``lm_head`` runs on those positions only;
* depth decoder: only the chosen frames (`Batch.decoder`) go through it. Its input is the
  backbone state that predicted the frame's codebook 0, then codebooks 0..K-2; position k predicts
  codebook k with its own head, all K-1 heads in one einsum.

`csm_loss` returns *sums* of cross-entropy, never means: the loop divides by the number of targets
in the whole optimizer step, so gradient accumulation equals one big batch.
"""

import torch
import torch.nn.functional as F
from torch import nn

from voxlora.backends.torch.attention import causal_training
from voxlora.backends.torch.compile import stacks


def unwrap(model) -> nn.Module:
    """The CsmForConditionalGeneration inside a peft model (its modules carry the LoRA layers)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _audio_embeddings(embed, codes: torch.Tensor) -> torch.Tensor:
    """(N, K) codes -> (N, H) summed codebook embeddings (CsmBackboneModelEmbeddings' math)."""
    ids = codes + embed.audio_tokens_offsets  # (N, K) rows of the shared table
    table = embed.embed_audio_tokens
    if type(table) is nn.Embedding:
        return F.embedding_bag(ids, table.weight, mode="sum")  # (N, H)
    return table(ids).sum(1)  # a wrapped table (trained embeddings): let the wrapper choose its weight


def csm_loss(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(backbone cross-entropy sum, depth-decoder cross-entropy sum), fp32 scalars.

    Means: divide by ``batch.n_backbone`` and ``batch.n_decoder`` (or the step's totals). Positions
    are gathered by the batch's host-made indices (``audio_index``, ``predict_index``,
    ``decoder_index``): no boolean-mask indexing, whose size the host would wait for on a GPU.
    """
    csm = unwrap(model)
    b, t = batch.tokens.shape
    x = csm.embed_text_tokens(batch.tokens)  # (B, T, H)
    flat_codes = batch.codes.flatten(0, 1)  # (B*T, K)
    audio_x = _audio_embeddings(
        csm.backbone_model.embed_tokens, flat_codes.index_select(0, batch.audio_index)
    )
    x = x.flatten(0, 1).index_copy(0, batch.audio_index, audio_x.to(x.dtype)).view(b, t, -1)  # (B, T, H)
    configs = (csm.backbone_model.config, csm.depth_decoder.model.config)
    compiled = stacks(csm)  # --compile: the same modules, compiled (`voxlora.backends.torch.compile`)
    backbone_model = compiled.get("backbone", csm.backbone_model)
    with causal_training(*configs):  # no mask to build, no device read (`attention`'s docstring)
        h = backbone_model(inputs_embeds=x, use_cache=False).last_hidden_state  # (B, T, H)

    h_prev_all = h[:, :-1].flatten(0, 1)  # (B*(T-1), H): position t predicts codebook 0 of t+1
    logits = csm.lm_head(h_prev_all.index_select(0, batch.predict_index))  # (M, V)
    next_codes = batch.codes[:, 1:].flatten(0, 1)  # (B*(T-1), K), the frames at t+1
    targets = next_codes[:, 0].index_select(0, batch.predict_index)  # (M,)
    backbone = F.cross_entropy(logits.float(), targets, reduction="sum")

    h_prev = h_prev_all.index_select(
        0, batch.decoder_index
    )  # (Fr, H) the state that predicted each chosen frame
    codes = next_codes.index_select(0, batch.decoder_index)  # (Fr, K)
    ids = F.pad(codes[:, :-1], (1, 0))  # (Fr, K): slot 0 is replaced by h_prev
    fr, pad = len(ids), batch.decoder_rows - len(ids)
    if pad > 0:  # --compile: a bucket's rows (zeros), cut off below
        ids, h_prev = F.pad(ids, (0, 0, 0, pad)), F.pad(h_prev, (0, 0, 0, pad))
    decoder = csm.depth_decoder
    # An all-ones mask keeps SDPA's is_causal path and avoids transformers' packed-sequence check,
    # which fails on the decoder's 1-D position ids when Fr == K.
    with causal_training(*configs):
        hd = compiled.get("decoder", decoder.model)(
            input_ids=ids,
            backbone_last_hidden_state=h_prev,
            attention_mask=torch.ones_like(ids),
            use_cache=False,
        ).last_hidden_state[:fr]  # (Fr, K, Hd)
    heads = decoder.codebooks_head.weight  # (K-1, Hd, V)
    dec_logits = torch.einsum("fkh,khv->fkv", hd[:, 1:], heads.to(hd.dtype))  # (Fr, K-1, V)
    dec = F.cross_entropy(dec_logits.float().flatten(0, 1), codes[:, 1:].flatten(), reduction="sum")
    return backbone, dec
