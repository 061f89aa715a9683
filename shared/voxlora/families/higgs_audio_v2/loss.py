"""Higgs Audio v2's training loss on a `HiggsBatch`: the model's own numbers, as sums.

``HiggsAudioV2ForConditionalGeneration.forward(..., labels, audio_labels)`` returns, per batch,
``sum_k mean CE(codebook k)`` over the audio positions (labels shifted one to the left, causal) plus,
when the model has its text head, ``mean CE(text)``. Every codebook has the same number of targets
(the delay pattern's bos/eos slots are ignored, leaving T per clip in each), so the audio part is
``(CE summed over codebooks and frames) / n_audio``.

`higgs_loss` returns those sums (and the loop divides by the targets of the whole optimizer step, as
for CSM, so gradient accumulation and DDP equal one big batch); `mean_loss` is the model's number
for one batch. The audio head runs only at the positions that predict a target, and the labels
never go through the (possibly peft-wrapped) model's forward.
"""

import torch
import torch.nn.functional as F

from voxlora.families.higgs_audio_v2.batch import IGNORE, HiggsBatch, expanded_audio_labels


def unwrap(model):
    """The HiggsAudioV2ForConditionalGeneration inside a peft or DDP wrapper."""
    model = getattr(model, "module", model)  # DDP
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def higgs_loss(model, batch: HiggsBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio cross-entropy sum over every codebook, text cross-entropy sum), fp32 scalars.

    The text sum is 0 without a text head. Means: divide by ``batch.n_audio`` and ``batch.n_text``.
    """
    higgs = unwrap(model)
    h = higgs.model(**batch.model_inputs(), use_cache=False).last_hidden_state  # (B, L, H)
    K, C = higgs.config.num_codebooks, higgs.config.codebook_size

    targets = expanded_audio_labels(batch)[:, 1:]  # (B, L-1, K): position t predicts t+1
    predicts = targets.ne(IGNORE).any(-1)  # (B, L-1)
    logits = higgs.audio_lm_head(h[:, :-1][predicts]).float().view(-1, K, C)  # (N, K, C)
    audio = F.cross_entropy(
        logits.reshape(-1, C), targets[predicts].reshape(-1), ignore_index=IGNORE, reduction="sum"
    )

    text = audio.new_zeros(())
    if higgs.text_lm_head is not None:
        labels = batch.labels[:, 1:]  # (B, L-1)
        chosen = labels.ne(IGNORE)
        text_logits = higgs.text_lm_head(h[:, :-1][chosen]).float()  # (M, V)
        text = F.cross_entropy(text_logits, labels[chosen], reduction="sum")
    return audio, text


def mean_loss(model, batch: HiggsBatch) -> torch.Tensor:
    """The number ``HiggsAudioV2ForConditionalGeneration`` reports as ``loss`` for this batch."""
    audio, text = higgs_loss(model, batch)
    loss = audio / max(batch.n_audio, 1)
    if unwrap(model).text_lm_head is not None:
        loss = loss + text / max(batch.n_text, 1)
    return loss
