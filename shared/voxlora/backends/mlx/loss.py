"""CSM's forward and training loss on MLX: `voxlora.families.csm.loss.csm_loss`, the same sums over the same targets.

The input is the torch trainer's `Batch` (any object with numpy-able ``tokens``, ``codes``, ``kind``
and ``decoder``), turned once into index arrays (`batch_arrays`): MLX has no boolean-mask indexing,
so the positions each loss term reads are found in numpy and gathered with ``take``. The batch
builder is therefore shared by both backends.

* backbone: text positions embed text ids, audio positions (frames and the end frame) the sum of
  their K codebook rows; position t predicts codebook 0 of position t + 1 (``codebook0_head``);
* depth decoder, on the chosen frames only: input 0 is the backbone state that predicted the frame's
  codebook 0, input k the embedding of codebook k-1; position k predicts codebook k with
  ``audio_head[k-1]``.
"""

from dataclasses import dataclass

import mlx.core as mx
import numpy as np


@dataclass
class BatchArrays:
    """A `Batch` as the gathers the MLX forward needs (B clips, T positions, K codebooks)."""

    tokens: mx.array  # (B, T) text token ids
    codes: mx.array  # (B, T, K) Mimi codes
    audio: mx.array  # (B, T) bool: FRAME or EOS positions (embedded from their codes)
    backbone_from: mx.array  # (M,) flat (b * T + t) positions whose state predicts codebook 0 at t + 1
    backbone_targets: mx.array  # (M,) codebook 0 of those next positions
    decoder_from: mx.array  # (Fr,) flat positions whose state starts each chosen frame's decoder pass
    decoder_codes: mx.array  # (Fr, K) the chosen frames' codes


def batch_arrays(batch) -> BatchArrays:
    """The torch trainer's `Batch` (or anything with numpy-able tokens/codes/kind/decoder) for MLX."""
    from voxlora.families.csm.sequences import EOS, FRAME

    tokens, codes = np.asarray(batch.tokens), np.asarray(batch.codes)  # (B, T), (B, T, K)
    kind, chosen = np.asarray(batch.kind), np.asarray(batch.decoder, dtype=bool)  # (B, T)
    b, t = tokens.shape
    audio = (kind == FRAME) | (kind == EOS)  # (B, T)
    flat = np.arange(b * t).reshape(b, t)  # (B, T)
    predicts = audio[:, 1:]  # position t predicts codebook 0 of t + 1
    picked = chosen[:, 1:]  # frames at t + 1 the depth decoder learns on
    return BatchArrays(
        tokens=mx.array(tokens.astype(np.int32)),
        codes=mx.array(codes.astype(np.int32)),
        audio=mx.array(audio),
        backbone_from=mx.array(flat[:, :-1][predicts].astype(np.int32)),
        backbone_targets=mx.array(codes[:, 1:, 0][predicts].astype(np.int32)),
        decoder_from=mx.array(flat[:, :-1][picked].astype(np.int32)),
        decoder_codes=mx.array(codes[:, 1:][picked].astype(np.int32)),
    )


def _audio_rows(model, table, codes: mx.array, first: int = 0) -> mx.array:
    """(..., n) codes of codebooks first..first+n-1 -> (..., n, H) rows of the shared audio table."""
    offsets = (mx.arange(codes.shape[-1], dtype=mx.int32) + first) * model.args.audio_vocab_size
    return table(codes + offsets)


def decoder_table(model):
    """The depth decoder's input embedding: the shared audio table unless training untied them."""
    return (
        model["decoder_audio_embeddings"] if "decoder_audio_embeddings" in model else model.audio_embeddings
    )


def backbone_hidden(model, arrays: BatchArrays) -> mx.array:
    """(B, T, H) backbone states: text positions embed text ids, audio positions sum their codebooks."""
    text = model.text_embeddings(arrays.tokens)  # (B, T, H)
    audio = _audio_rows(model, model.audio_embeddings, arrays.codes).sum(axis=2)  # (B, T, H)
    x = mx.where(arrays.audio[..., None], audio.astype(text.dtype), text)  # (B, T, H)
    return model.backbone(x)


def decoder_logits(model, h_prev: mx.array, codes: mx.array) -> mx.array:
    """(Fr, H) backbone states and (Fr, K) codes -> (Fr, K-1, V) logits of codebooks 1..K-1.

    Input position 0 is the backbone state, position k the embedding of codebook k-1's code;
    position k predicts codebook k with its own head (``audio_head[k-1]``).
    """
    emb = _audio_rows(model, decoder_table(model), codes[:, :-1])  # (Fr, K-1, H)
    x = mx.concatenate([h_prev[:, None].astype(emb.dtype), emb], axis=1)  # (Fr, K, H)
    hd = model.decoder(model.projection(x))  # (Fr, K, Hd)
    logits = hd[:, 1:].swapaxes(0, 1) @ model.audio_head.astype(hd.dtype)  # (K-1, Fr, V)
    return logits.swapaxes(0, 1)  # (Fr, K-1, V)


def _ce_sum(logits: mx.array, targets: mx.array) -> mx.array:
    logits = logits.astype(mx.float32)
    picked = mx.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return (mx.logsumexp(logits, axis=-1) - picked).sum()


def forward_logits(model, arrays: BatchArrays) -> tuple[mx.array, mx.array]:
    """(backbone logits (M, V) at the loss's positions, decoder logits (Fr, K-1, V) of chosen frames)."""
    h = backbone_hidden(model, arrays)
    flat = h.reshape(-1, h.shape[-1])  # (B*T, H)
    logits = model.codebook0_head(flat[arrays.backbone_from])  # (M, V)
    if arrays.decoder_from.size == 0:
        return logits, mx.zeros((0, arrays.codes.shape[-1] - 1, model.args.audio_vocab_size))
    return logits, decoder_logits(model, flat[arrays.decoder_from], arrays.decoder_codes)


def csm_loss(model, batch) -> tuple[mx.array, mx.array]:
    """(backbone cross-entropy sum, depth-decoder cross-entropy sum), fp32 scalars: `train.loss.csm_loss`.

    ``batch`` is a `Batch` or its `batch_arrays`. Means: divide by ``batch.n_backbone`` and
    ``batch.n_decoder`` (or the step's totals), as the torch loop does.
    """
    arrays = batch if isinstance(batch, BatchArrays) else batch_arrays(batch)
    logits, dec_logits = forward_logits(model, arrays)
    backbone = _ce_sum(logits, arrays.backbone_targets)
    if dec_logits.shape[0] == 0:
        return backbone, mx.array(0.0)
    return backbone, _ce_sum(dec_logits, arrays.decoder_codes[:, 1:])
