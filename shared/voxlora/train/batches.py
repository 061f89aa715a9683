"""Seeded, length-sorted batches of a family's training store, for any family.

An epoch's plan depends only on (seed, epoch): clips are sorted by length (ties broken by a seeded
random key), cut into *step groups* of ``batch_size * grad_accum`` clips (or packed under
``max_batch_frames`` padded positions per micro-batch), and the groups are shuffled. A step group
splits into ``grad_accum`` micro-batches, so ``--batch-size 4`` and ``--batch-size 2 --grad-accum 2``
see the same clips in the same steps. Resuming at (epoch, position) rebuilds the same plan and skips
``position`` steps: nothing about the order lives in memory only.

The store is the family's (`TrainModel.build_store`): it has ``lengths`` (positions per clip) and
gathers its own micro-batches (``store.batch(clips, fraction, seed, epoch)``; CSM's:
`voxlora.families.csm.batches`).
"""

import numpy as np
import torch

from voxlora.counter_hash import epoch_seed


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


def iterate_batches(store, config, start_epoch: int = 0, start_position: int = 0):
    """Yield (epoch, position, [Batch] * grad_accum) forever, from (start_epoch, start_position) on."""
    epoch, position = start_epoch, start_position
    while True:
        plan = plan_epoch(
            store.lengths, config.seed, epoch, config.batch_size, config.grad_accum, config.max_batch_frames
        )
        for p in range(position, len(plan)):
            batches = [store.batch(c, config.decoder_frame_fraction, config.seed, epoch) for c in plan[p]]
            yield epoch, p, batches
        epoch, position = epoch + 1, 0
