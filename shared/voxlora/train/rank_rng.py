"""Each DDP rank's own random stream (dropout), and every rank's stream in the checkpoint.

With one process nothing changes: rank 0 keeps the stream ``--seed`` started. Rank r > 0 reseeds
torch's generators with `rank_seed` (seed, r) once its model is wrapped, so ranks draw different
dropout masks instead of the same ones. At a checkpoint every rank's generator states are gathered
to rank 0 (a gloo all-gather of their bytes, no pickle) and saved beside rank 0's own as
``rng.rank<r>.<name>`` (``rng.rank1.torch``, ``rng.rank1.cuda.0``); resuming, rank r restores its
own. A rank the checkpoint has no state for (a run resumed on more processes than it had) is
seeded with `rank_seed` again, with one log line.

The data order needs no per-rank generator: it is a function of (seed, epoch), dealt round-robin
to the ranks, and the depth decoder's frames of (seed, epoch, clip) (`train.batches`).
"""

import hashlib
import logging
import re

import torch

log = logging.getLogger("voxlora")
RANK_KEY = re.compile(r"^rng\.rank(\d+)\.(.+)$")


def rank_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps ``seed``; other ranks get a seed of their own, the same in every run.

    >>> rank_seed(3, 0), rank_seed(3, 1) == rank_seed(3, 1), rank_seed(3, 1) != rank_seed(3, 2)
    (3, True, True)
    """
    if rank == 0:
        return seed
    digest = hashlib.sha256(f"voxlora-rank-seed:{seed}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def seed_rank(world, seed: int) -> None:
    """Reseed torch's generators (CPU and every GPU) for this rank; nothing on rank 0."""
    if world.rank > 0:
        torch.manual_seed(rank_seed(seed, world.rank))


def gather(world, tensors: dict) -> dict:
    """Every rank calls it; rank 0 gets its own ``tensors`` plus each other rank's as ``rng.rank<r>.*``."""
    if world.size == 1:
        return tensors
    import torch.distributed as dist

    out = dict(tensors)
    for key in sorted(tensors):
        mine = tensors[key].detach().to("cpu").contiguous().view(torch.uint8).flatten()
        parts = [torch.empty_like(mine) for _ in range(world.size)]
        dist.all_gather(parts, mine, group=world.slow_group)  # gloo: CPU tensors, every backend
        for rank in range(1, world.size):
            out[f"rng.rank{rank}.{key.removeprefix('rng.')}"] = parts[rank].clone()
    return out


def for_rank(tensors: dict, rank: int) -> dict | None:
    """The RNG tensors rank ``rank`` saved (as ``rng.*``), or None when the checkpoint has none for it."""
    if rank == 0:
        return {k: v for k, v in tensors.items() if not RANK_KEY.match(k)}
    own = {f"rng.{m[2]}": v for k, v in tensors.items() if (m := RANK_KEY.match(k)) and int(m[1]) == rank}
    return own or None


def restore(world, backend, tensors: dict, seed: int) -> None:
    """Restore this rank's generators from a checkpoint's RNG tensors (see `for_rank`)."""
    own = for_rank(tensors, world.rank)
    if own is None:
        log.info("process %d: the checkpoint has no random state for it; seeding it afresh", world.rank)
        seed_rank(world, seed)
        return
    backend.restore_rng(own)
