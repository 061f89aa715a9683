"""CSM's training store and micro-batches: every clip's positions in flat tensors, gathered into
right-padded batches, and which frames the depth decoder learns on.

The depth decoder's frames are chosen by a counter-based hash of (seed, epoch, clip, position)
(`voxlora.counter_hash`), so the choice is the same however the clips are batched, and needs no
random state to save. Padding goes on the right: with causal attention no real position ever sees a
pad, so batches need no attention mask and a padded clip computes what it computes alone.

Everything whose size depends on the data (which positions are audio, which predict a target, which
frames the depth decoder sees) is found here, on the host, as index tensors: the loss on a GPU then
only gathers by them and never waits for the device to learn a size (no host sync in a step).
With ``--compile`` the store pads each batch to a few shapes (`voxlora.buckets`), so the
compiled model meets a handful of shapes, not one per batch.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from voxlora.buckets import bucket
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
    buckets: "Buckets | None" = None  # pad batches to a few shapes (``--compile``); None: to the longest clip

    def __len__(self) -> int:
        return len(self.names)

    def batch(self, clips, fraction: float = 1.0, seed: int = 0, epoch: int = 0) -> "Batch":
        """`make_batch` of these clips (the trainer's way to a batch, whatever the family)."""
        return make_batch(self, clips, fraction, seed, epoch)


@dataclass(frozen=True)
class Buckets:
    """The padded shapes of ``--compile``'s batches: rows to ``rows`` (``--batch-size``; None: to fill
    ``budget`` positions, ``--max-batch-frames``), positions and depth-decoder frames to
    `voxlora.buckets.bucket` sizes, never past the model's ``max_positions``."""

    max_positions: int
    rows: int | None = None
    budget: int | None = None


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
    # Host-made indices (see the module's docstring); computed from kind/decoder when not given.
    audio_index: torch.Tensor | None = None  # (N,) flat (B*T) positions that embed audio codes
    predict_index: torch.Tensor | None = None  # (M,) flat (B*(T-1)) positions predicting codebook 0
    decoder_index: torch.Tensor | None = None  # (Fr,) flat (B*(T-1)) positions whose next frame is chosen
    decoder_rows: int = 0  # rows the depth decoder runs on (>= Fr: padded with --compile)
    n_pad: int = field(default=-1)  # padded positions (pad_fraction); -1: count them

    def __post_init__(self):
        if self.audio_index is None:  # on the host, before the batch moves
            audio = (self.kind == FRAME) | (self.kind == EOS)  # (B, T)
            self.audio_index = audio.flatten().nonzero().squeeze(1)
            self.predict_index = audio[:, 1:].flatten().nonzero().squeeze(1)
            self.decoder_index = self.decoder[:, 1:].flatten().nonzero().squeeze(1)
        self.decoder_rows = max(self.decoder_rows, len(self.decoder_index))
        if self.n_pad < 0:
            self.n_pad = int((self.kind == PAD).sum())

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
        return self.n_pad, self.kind.numel()


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
    rows = len(clips)
    if store.buckets is not None:  # a few shapes for the compiled model: pad rows and positions
        rows, t = padded_shape(store.buckets, rows, t)
        lengths = torch.cat([lengths, torch.zeros(rows - len(clips), dtype=torch.int64)])  # (B',) empty rows
        clips = torch.cat([clips, torch.full((rows - len(clips),), -1, dtype=torch.int64)])
    pos = torch.arange(t)  # (T,)
    valid = pos[None, :] < lengths[:, None]  # (B, T)
    idx = torch.where(valid, store.offsets[clips.clamp(min=0)][:, None] + pos[None, :], 0)  # (B, T)
    kind = torch.where(valid, store.kind[idx], torch.tensor(PAD, dtype=torch.int8))
    tokens = torch.where(valid, store.tokens[idx], store.tokens[0])
    codes = store.codes[idx] * valid[..., None]  # (B, T, K)
    decoder = choose_decoder_frames(kind, clips.clamp(min=0), fraction, seed, epoch)  # empty rows: no frames
    k = store.codes.shape[1]
    real = clips >= 0
    chosen = int(decoder.sum())
    return Batch(
        clips=clips[real],
        tokens=tokens,
        codes=codes,
        kind=kind,
        decoder=decoder,
        n_backbone=int(((kind == FRAME) | (kind == EOS)).sum()),
        n_decoder=chosen * (k - 1),
        frames=int(store.frames[clips[real]].sum()),
        decoder_rows=bucket(chosen, 16) if store.buckets is not None else chosen,
    )


def padded_shape(buckets: Buckets, rows: int, positions: int) -> tuple[int, int]:
    """(rows, positions) of a batch padded to its bucket (`Buckets`).

    >>> padded_shape(Buckets(max_positions=2048, rows=4), 3, 100)
    (4, 128)
    >>> padded_shape(Buckets(max_positions=2048, budget=1024), 3, 100)   # 1024 // 128 rows fill the budget
    (8, 128)
    >>> padded_shape(Buckets(max_positions=2048, budget=1024), 9, 100)   # more: in quarters of that
    (10, 128)
    """
    t = max(positions, min(bucket(positions), buckets.max_positions))
    if buckets.rows is not None:
        return max(rows, buckets.rows), t
    fill = max(1, (buckets.budget or 0) // t)  # rows of t positions the budget holds
    step = max(1, fill // 4)  # a batch of shorter clips may hold up to twice that: round up to quarters
    return max(fill, -(-rows // step) * step), t
