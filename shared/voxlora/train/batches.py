"""Seeded, length-sorted batches of CSM sequences, and which frames the depth decoder learns on.

An epoch's plan depends only on (seed, epoch): clips are sorted by length (ties broken by a seeded
random key), cut into *step groups* of ``batch_size * grad_accum`` clips (or packed under
``max_batch_frames`` padded positions per micro-batch), and the groups are shuffled. A step group
splits into ``grad_accum`` micro-batches, so ``--batch-size 4`` and ``--batch-size 2 --grad-accum 2``
see the same clips in the same steps. Resuming at (epoch, position) rebuilds the same plan and skips
``position`` steps: nothing about the order lives in memory only.

The depth decoder's frames are chosen by a counter-based hash of (seed, epoch, clip, position), so
the choice is the same however the clips are batched, and needs no random state to save.

Padding goes on the right. With causal attention no real position ever sees a pad, so batches need
no attention mask and a padded clip computes what it computes alone.
"""

from dataclasses import dataclass

import numpy as np
import torch

from voxlora.train.sequences import EOS, FRAME, PAD, SequenceStore


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


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wraps on overflow, as intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for one epoch's data order."""
    return int(_mix(_mix(np.array([seed], dtype=np.uint64)) ^ np.uint64(epoch))[0] >> np.uint64(1))


def frame_scores(seed: int, epoch: int, clips: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random uint64 per (clip, position): (B,) x (T,) -> (B, T)."""
    base = _mix(_mix(np.array([seed], dtype=np.uint64)) ^ np.uint64(epoch))
    per_clip = _mix(base ^ clips.astype(np.uint64))  # (B,)
    return _mix(per_clip[:, None] ^ positions.astype(np.uint64)[None, :])  # (B, T)


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


def plan_epoch(
    lengths: torch.Tensor,
    seed: int,
    epoch: int,
    batch_size: int = 4,
    grad_accum: int = 1,
    max_batch_frames: int | None = None,
) -> list[list[torch.Tensor]]:
    """The clip indices of every micro-batch of every step of one epoch.

    >>> plan_epoch(torch.tensor([5, 3, 9, 4]), seed=0, epoch=0, batch_size=2)   # doctest: +SKIP
    [[tensor([0, 2])], [tensor([1, 3])]]     # steps, each a list of grad_accum micro-batches
    """
    n = len(lengths)
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    keys = torch.rand(n, generator=gen).numpy()
    order = torch.from_numpy(np.lexsort((keys, lengths.numpy())))  # by length, ties at random
    if max_batch_frames is None:
        size = batch_size * grad_accum
        groups = [order[i : i + size] for i in range(0, n, size)]
        steps = [list(torch.split(g, batch_size)) for g in groups]
    else:
        micro, start = [], 0
        for i in range(1, n + 1):  # sorted ascending, so clip i-1 is the longest so far
            if i == n or (i + 1 - start) * int(lengths[order[i]]) > max_batch_frames:
                micro.append(order[start:i])
                start = i
        steps = [micro[i : i + grad_accum] for i in range(0, len(micro), grad_accum)]
    shuffle = torch.randperm(len(steps), generator=gen).tolist()
    return [steps[i] for i in shuffle]


def steps_per_epoch(
    lengths: torch.Tensor, batch_size: int, grad_accum: int, max_batch_frames: int | None
) -> int:
    return len(plan_epoch(lengths, 0, 0, batch_size, grad_accum, max_batch_frames))


def iterate_batches(store: SequenceStore, config, start_epoch: int = 0, start_position: int = 0):
    """Yield (epoch, position, [Batch] * grad_accum) forever, from (start_epoch, start_position) on."""
    epoch, position = start_epoch, start_position
    while True:
        plan = plan_epoch(
            store.lengths, config.seed, epoch, config.batch_size, config.grad_accum, config.max_batch_frames
        )
        for p in range(position, len(plan)):
            batches = [
                make_batch(store, c, config.decoder_frame_fraction, config.seed, epoch) for c in plan[p]
            ]
            yield epoch, p, batches
        epoch, position = epoch + 1, 0
