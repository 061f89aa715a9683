"""CSM's training store and micro-batches: every clip's positions in flat tensors, gathered into
right-padded batches, and which frames the depth decoder learns on.

The depth decoder's frames are chosen by a counter-based hash of (seed, epoch, clip, position)
(`voxlora.counter_hash`), so the choice is the same however the clips are batched, and needs no
random state to save. Padding goes on the right: with causal attention no real position ever sees a
pad, so batches need no attention mask and a padded clip computes what it computes alone.
"""

from dataclasses import dataclass

import numpy as np
import torch

from voxlora.counter_hash import frame_scores

TEXT, FRAME, EOS, PAD = 0, 1, 2, -1  # the kind of a position


@dataclass
class SequenceStore:
    """Every clip's positions, concatenated (P = total positions, K = codebooks, N = clips)."""

    tokens: torch.Tensor  # (P,) int64 text token id per position
    codes: torch.Tensor  # (P, K) int64 Mimi codes; 0 on text positions
    kind: torch.Tensor  # (P,) int8 TEXT | FRAME | EOS
    offsets: torch.Tensor  # (N,) int64 where each clip starts
    lengths: torch.Tensor  # (N,) int64 positions per clip
    frames: torch.Tensor  # (N,) int64 audio frames per clip
    frame_rate: float  # codec frames per second of audio
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def batch(self, clips, fraction: float = 1.0, seed: int = 0, epoch: int = 0) -> "Batch":
        """`make_batch` of these clips (the trainer's way to a batch, whatever the family)."""
        return make_batch(self, clips, fraction, seed, epoch)


@dataclass
class Batch:
    """One micro-batch (B clips, T = longest clip's positions, K codebooks)."""

    clips: torch.Tensor  # (B,) int64 indices into the store
    tokens: torch.Tensor  # (B, T) int64 text token ids
    codes: torch.Tensor  # (B, T, K) int64 Mimi codes
    kind: torch.Tensor  # (B, T) int8 TEXT | FRAME | EOS | PAD
    decoder: torch.Tensor  # (B, T) bool: frames the depth decoder learns on
    n_backbone: int  # backbone targets: every frame and end frame (codebook 0)
    n_decoder: int  # depth-decoder targets: chosen frames x (K - 1) codebooks
    frames: int  # audio frames in the batch (throughput)

    def to(self, device) -> "Batch":
        """On ``device``; to a GPU through pinned host memory, asynchronously (no host sync)."""
        pin = torch.device(device).type == "cuda"
        move = {
            k: (v.pin_memory() if pin and v.device.type == "cpu" else v).to(device, non_blocking=True)
            for k, v in vars(self).items()
            if isinstance(v, torch.Tensor)
        }
        return Batch(**{**vars(self), **move})

    def padding(self) -> tuple[int, int]:
        """(padded positions, all positions) of the batch, for ``pad_fraction`` (on the host: no sync)."""
        return int((self.kind == PAD).sum()), self.kind.numel()


def choose_decoder_frames(kind: torch.Tensor, clips: torch.Tensor, fraction: float, seed: int, epoch: int):
    """(B, T) kinds -> (B, T) bool: `sequences.decoder_frames` of each clip's frames, plus its end frame."""
    is_frame = kind == FRAME  # (B, T)
    if fraction >= 1:
        return is_frame | (kind == EOS)
    n_frames = is_frame.sum(1)  # (B,)
    keep = n_frames - torch.floor(n_frames.double() * (1 - fraction) + 1e-9).long()  # decoder_frames, (B,)
    scores = frame_scores(seed, epoch, clips.numpy(), np.arange(kind.shape[1]))  # (B, T)
    scores = np.where(is_frame.numpy(), scores >> np.uint64(1), np.uint64(2**63))  # non-frames sort last
    ranks = torch.from_numpy(np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable"))
    return (is_frame & (ranks < keep[:, None])) | (kind == EOS)


def make_batch(store: SequenceStore, clips, fraction: float = 1.0, seed: int = 0, epoch: int = 0) -> Batch:
    """Gather clips into one right-padded micro-batch, in one indexing operation per tensor."""
    clips = torch.as_tensor(clips, dtype=torch.int64)  # (B,)
    lengths = store.lengths[clips]  # (B,)
    t = int(lengths.max())
    pos = torch.arange(t)  # (T,)
    valid = pos[None, :] < lengths[:, None]  # (B, T)
    idx = torch.where(valid, store.offsets[clips][:, None] + pos[None, :], 0)  # (B, T)
    kind = torch.where(valid, store.kind[idx], torch.tensor(PAD, dtype=torch.int8))
    tokens = torch.where(valid, store.tokens[idx], store.tokens[0])
    codes = store.codes[idx] * valid[..., None]  # (B, T, K)
    decoder = choose_decoder_frames(kind, clips, fraction, seed, epoch)
    k = store.codes.shape[1]
    return Batch(
        clips=clips,
        tokens=tokens,
        codes=codes,
        kind=kind,
        decoder=decoder,
        n_backbone=int(((kind == FRAME) | (kind == EOS)).sum()),
        n_decoder=int(decoder.sum()) * (k - 1),
        frames=int(store.frames[clips].sum()),
    )
