"""VoxCPM training batches from text ids and cached latents, as VoxCPM's packer lays them out.

One sequence (`AudioFeatureProcessingPacker.process_tts_data` / ``_with_ref``), token by token::

    text track   [text ids..., 101, 0 x A, 102]                      (no prompt clip)
    audio track  [0 x (L+1),   latents x A, 0]
    loss mask    [0 x (L+1),   1 x A,       0]     stop label 1 on the last audio patch
    with ref_audio: [103, 0 x R, 104] (its latents on the audio track, no loss) comes first

A batch pads every track with zeros to its longest sequence, exactly as the packer does, so
VoxCPM's own training forward gives the same ``loss/diff`` and ``loss/stop`` on it. Unlike the packer,
nothing re-encodes audio here: latents come from `latents.LatentCache`.

VoxCPM's ``max_batch_tokens`` is lora-train's ``--max-batch-frames`` (`voxlora.train.batches.plan_epoch`):
sequences sorted by length, each micro-batch's padded size (longest x count) under the budget.
"""

import torch

AUDIO_START, AUDIO_END, PROMPT_START, PROMPT_END = 101, 102, 103, 104


def sequence_length(n_text: int, n_audio: int, n_ref: int = 0) -> int:
    """Tokens one record takes: text, 101, audio patches, 102 (+ 103, ref patches, 104)."""
    return n_text + n_audio + 2 + (n_ref + 2 if n_ref else 0)


def pack_one(text_ids, latents: torch.Tensor, ref: torch.Tensor | None = None) -> dict:
    """One record's tracks (each (S,) or (S, P, D)); ``latents``/``ref``: (A, P, D) / (R, P, D)."""
    text = torch.as_tensor(list(text_ids), dtype=torch.int32)
    L, A = len(text), latents.shape[0]
    R = 0 if ref is None else ref.shape[0]
    zero = latents.new_zeros((1, *latents.shape[1:]))

    def ints(*parts):
        return torch.cat([torch.as_tensor(p, dtype=torch.int32) for p in parts])

    def zeros(n):
        return torch.zeros(n, dtype=torch.int32)

    def ones(n):
        return torch.ones(n, dtype=torch.int32)

    text_track = ints(text, [AUDIO_START], zeros(A), [AUDIO_END])
    feats = [zero.expand(L + 1, -1, -1), latents, zero]
    text_mask = ints(ones(L + 1), zeros(A), ones(1))
    audio_mask = ints(zeros(L + 1), ones(A), zeros(1))
    loss_mask = audio_mask.clone()
    if R:
        text_track = ints([PROMPT_START], zeros(R), [PROMPT_END], text_track)
        feats = [zero, ref, zero, *feats]
        text_mask = ints(ones(1), zeros(R), ones(1), text_mask)
        audio_mask = ints(zeros(1), ones(R), zeros(1), audio_mask)
        loss_mask = ints(zeros(R + 2), loss_mask)
    labels = torch.zeros(len(text_track), dtype=torch.int32)
    labels[-2] = 1  # stop on the last audio patch
    return {
        "text_tokens": text_track,
        "audio_feats": torch.cat(feats).to(torch.float32),
        "text_mask": text_mask,
        "audio_mask": audio_mask,
        "loss_mask": loss_mask,
        "labels": labels,
    }


def collate(items: list[dict]) -> dict:
    """Records (``text_ids``, ``latents``, optional ``ref_latents``) -> the padded batch (B, S, ...)."""
    packed = [pack_one(r["text_ids"], r["latents"], r.get("ref_latents")) for r in items]
    S = max(len(p["text_tokens"]) for p in packed)

    def pad(t):
        return torch.nn.functional.pad(t, (0, 0) * (t.dim() - 1) + (0, S - t.shape[0]))

    batch = {key: torch.stack([pad(p[key]) for p in packed]) for key in packed[0]}
    lengths = [len(p["text_tokens"]) for p in packed]
    batch["position_ids"] = torch.stack(
        [torch.cat([torch.arange(n), torch.zeros(S - n, dtype=torch.long)]) for n in lengths]
    )
    return batch
