"""lora-train on several processes (torchrun): DistributedDataParallel, one data order, rank 0 writes.

Under ``torchrun`` (or ``lora-train --nproc N``, `train.launch`) every process is one *rank* of
the job; `start` joins torchrun's process group (NCCL on CUDA, one GPU per process; gloo on CPUs).
With one process nothing here does anything: `World()` is the single-process world.

The rules, each in one place:

* **Data.** A step of the whole job is the data plan's step for ``grad_accum x processes``
  micro-batches (`job_config`), and its micro-batches are dealt round-robin to the ranks
  (`shard`). So N processes with ``--batch-size b`` train on exactly the clips one process trains on
  with ``--grad-accum N`` (and, without ``--max-batch-frames``, with ``--batch-size N*b``), step
  for step. ``processes`` is the number of processes the run *started* with; checkpoints keep it,
  so a run resumed on another number of processes keeps its steps and its data position
  (epoch, step): the step's micro-batches are only dealt differently. A rank left without a
  micro-batch (the short last step of an epoch) runs one with weight 0 (`Idle`), so every rank
  joins each all-reduce.
* **Gradients.** `DdpStepper`: every rank backpropagates its loss sums divided by the target counts
  of the *whole step* (summed over ranks, one all-reduce before the backward) and multiplied by the
  world size; DDP sums and divides by the world size, so each rank holds the one-process gradient.
  Loss sums and frames are summed over ranks too, so metrics, the NaN check and clipping agree.
* **Writes.** Only rank 0 writes checkpoints, metrics, the run record and the result (the recipe
  asks `World.is_main`); the others wait at a barrier after each checkpoint.
* **Codes cache.** `World.in_turns`: rank 0 prepares (encodes and fills the cache) first, then
  the first process of every other machine (a cache on local disk), then all the rest, which only
  read it. No two processes ever write the same entry at once.
* **Stopping.** A signal reaches the ranks at different moments, so whether to stop after a step is
  agreed (`agreed_stop`, an all-reduce of the signal number): every rank stops after the same step.
* **Failure.** A rank that dies (killed, out of memory) breaks its peers' next collective; they
  raise `PeerLost`, one line, and torchrun ends the job. Nothing is saved after the last
  checkpoint, which ``--resume`` continues from (on any number of processes).
"""

import atexit
import contextlib
import dataclasses
import datetime
import inspect
import logging
import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from voxlora.backends.torch.train import TorchStepper, autocast, pick_device
from voxlora.errors import VoxloraError
from voxlora.families.base import StepResult

log = logging.getLogger("voxlora")
TIMEOUT_ENV = "VOXLORA_DIST_TIMEOUT"  # seconds a collective may wait for a peer (default 1800)
PREPARE_TIMEOUT = datetime.timedelta(hours=24)  # waiting while rank 0 encodes the whole corpus
ONE_PROCESS = "one process"  # World.describe() of a single-process run


class PeerLost(VoxloraError):
    """Another process of the job died or stopped answering: this one cannot go on."""


@dataclasses.dataclass
class World:
    """This process's place in the job. ``World()`` is one process alone (no process group)."""

    rank: int = 0  # 0 .. size-1, torchrun's RANK
    size: int = 1  # processes in the job, torchrun's WORLD_SIZE
    local_rank: int = 0  # this process's index on its machine (its GPU), torchrun's LOCAL_RANK
    backend: str | None = None  # "nccl" | "gloo"; None: one process
    device: str = "cpu"  # where collectives' tensors live ("cuda" with NCCL)
    slow_group: object = None  # gloo group with a long timeout, for `in_turns`

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        if self.size == 1:
            return ONE_PROCESS
        return f"{self.size} processes ({self.backend})"

    def sum(self, values: list) -> list:
        """Element-wise sums over every rank of numbers (or 0-d tensors): one all-reduce.

        >>> World().sum([3, 4.5])   # one process: unchanged
        [3, 4.5]
        """
        if self.size == 1:
            return list(values)
        t = torch.stack([torch.as_tensor(v, dtype=torch.float64).reshape(()) for v in values]).to(self.device)
        with collective("summing the step's counts"):
            dist.all_reduce(t)
        return list(t.unbind())

    def max(self, value: int) -> int:
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        with collective("agreeing whether to stop"):
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def barrier(self, what: str = "waiting for rank 0") -> None:
        if self.size > 1:
            with collective(what):
                dist.barrier()

    def from_main(self, value: int, what: str = "waiting for rank 0") -> int:
        """Rank 0's ``value`` on every rank (a broadcast: no rank returns before rank 0 has called it).

        >>> World().from_main(3)   # one process: unchanged
        3
        """
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        with collective(what):
            dist.broadcast(t, src=0)
        return int(t.item())

    def in_turns(self, fn: Callable):
        """``fn()`` on rank 0, then on the first process of every other machine, then on the rest.

        For work that fills a shared cache: whoever comes later finds it filled.
        """
        if self.size == 1:
            return fn()
        local = self.local_rank == 0
        turn = 0 if self.is_main else 1 if local else 2
        result = None
        for t in range(3):
            if t == turn:
                result = fn()
            with collective("waiting for another process to prepare the data"):
                dist.barrier(group=self.slow_group)
        return result


@contextlib.contextmanager
def collective(what: str):
    """Turn the errors of a collective whose peer is gone into one `PeerLost` line."""
    try:
        yield
    except RuntimeError as e:
        if not is_peer_failure(e):
            raise
        raise PeerLost(peer_lost_message(what, e)) from None


def is_peer_failure(e: BaseException) -> bool:
    """Does this exception say a peer process is gone (gloo: connection closed; NCCL; a timeout)?"""
    if isinstance(e, dist.DistError):
        return True
    text = str(e).lower()
    markers = ("connection closed", "connection reset", "broken pipe", "gloo", "nccl", "timed out", "timeout")
    return isinstance(e, RuntimeError) and any(m in text for m in markers)


def peer_lost_message(what: str, e: BaseException) -> str:
    """One line: what this process was doing, the transport's reason, and how to go on."""
    text = " ".join(str(e).split())  # gloo: "[…/pair.cc:537] Read error […]: Connection reset by peer. …"
    reason = text.split("] ", 1)[-1].split(". ")[0][:160]
    return (
        f"lost another process of the job while {what} ({reason}); it died, was killed or hangs, "
        "and the job stops. The newest checkpoint is intact: continue with --resume, on any number of processes"
    )


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))


def start(device: str = "auto") -> World:
    """Join torchrun's process group when this process is one of several (``WORLD_SIZE`` > 1).

    CUDA: NCCL, this process on GPU ``LOCAL_RANK``; CPU: gloo. Ranks other than 0 log only errors.
    """
    if not under_torchrun():
        return World()
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = pick_device(device)
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise VoxloraError(
                f"process {rank}: LOCAL_RANK {local_rank}, but this machine has {torch.cuda.device_count()} "
                "GPUs; start at most one process per GPU (--nproc / --nproc_per_node)"
            )
        torch.cuda.set_device(local_rank)  # "cuda" now means this process's GPU
        name = "nccl"
    elif kind == "cpu":
        name = "gloo"
    else:
        raise VoxloraError(f"--device {kind}: several processes need CUDA GPUs (NCCL) or CPUs (gloo)")
    if not dist.is_initialized():
        dist.init_process_group(name, timeout=timeout())
        atexit.register(_leave)
    slow = dist.new_group(backend="gloo", timeout=PREPARE_TIMEOUT)
    if rank != 0:
        log.setLevel(max(log.level, logging.ERROR))  # rank 0 speaks for the job
    return World(rank, size, local_rank, name, "cuda" if name == "nccl" else "cpu", slow)


def _leave() -> None:
    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def check_config(config, world: World) -> None:
    """What several processes cannot do, refused in one line before any work."""
    if world.size == 1:
        return
    if config.backend == "mlx":
        raise VoxloraError(
            "--backend mlx trains on one process; several processes (torchrun) need --backend torch"
        )
    if config.manifest == "-" or config.val_manifest == "-":
        raise VoxloraError("--manifest -: several processes each read the manifest; give it as a file")


def job_config(config):
    """The config the training loop sees: a step is ``grad_accum x processes`` micro-batches.

    >>> from voxlora.train.config import TrainConfig
    >>> job_config(TrainConfig(grad_accum=2, processes=4)).grad_accum
    8
    """
    if config.processes == 1:
        return config
    return dataclasses.replace(config, grad_accum=config.grad_accum * config.processes)


def describe_layout(world: World, processes: int, grad_accum: int) -> str | None:
    """How each step is shared out, for the log (None: one process, as the run started).

    >>> describe_layout(World(), processes=2, grad_accum=1)
    'one process: each step is 2 micro-batches (the run started on 2 processes; its steps are kept)'
    """
    if world.size == 1 and processes == 1:
        return None
    per_step = grad_accum * processes
    text = f"{world.describe()}: each step is {per_step} micro-batches"
    if processes != world.size:
        text += f" (the run started on {processes} processes; its steps are kept)"
    if per_step < world.size:
        text += f"; {world.size - per_step} of the processes idle each step"
    return text


@dataclasses.dataclass
class Idle:
    """A micro-batch a rank runs with weight 0: it has no share of this step, but must join DDP."""

    batch: object  # a `batches.Batch` (another rank's), so the forward is a real one


def deal(micro: list, rank: int, size: int) -> list:
    """This rank's share of one step's micro-batches: every ``size``-th, starting at ``rank``.

    >>> deal(["a", "b", "c"], 0, 2), deal(["a", "b", "c"], 1, 2), deal(["a"], 1, 2)
    (['a', 'c'], ['b'], [Idle(batch='a')])
    """
    mine = micro[rank::size]
    return mine if mine else [Idle(micro[0])]


def shard(iterate_batches: Callable, world: World) -> Callable:
    """``iterate_batches`` of the whole job -> this rank's share of each step (same epoch, position).

    The position counts steps of the whole job, so it is the same on every rank and for any number
    of processes. Every rank builds the whole step's batches (cheap next to the forward) so the
    data order stays `batches.iterate_batches`'s alone.
    """
    if world.size == 1:
        return iterate_batches

    def sharded(store, config, start_epoch: int = 0, start_position: int = 0):
        for epoch, position, micro in iterate_batches(store, config, start_epoch, start_position):
            yield epoch, position, deal(micro, world.rank, world.size)

    return sharded


def agreed_stop(world: World, stop) -> Callable[[], bool] | None:
    """The loop's ``should_stop``: true on every rank after the same step, once any rank got a signal.

    ``stop`` is the `signals.StopSignals`; the agreed signal is written into it, so each rank then
    reports the same stop (exit code and message).
    """
    if stop is None:
        return None
    if world.size == 1:
        return lambda: stop.requested is not None

    def should_stop() -> bool:
        signum = world.max(stop.requested or 0)
        if signum and stop.requested is None:
            stop.requested = signum
        return bool(signum)

    return should_stop


def stepper(world: World, backend) -> Callable:
    """The loop's ``stepper`` factory: the backend's own on one process, `DdpStepper` on several."""
    if world.size == 1:
        return backend.stepper

    def make(model, config, *, loss=None):
        loss = loss or getattr(backend, "loss", None)  # the family's own loss, when it names one
        return DdpStepper(model, config, loss=loss, device=backend.device, world=world)

    return make


def main_only(world: World, fn: Callable) -> Callable:
    """``fn`` run by rank 0 alone; every rank then waits until it is done (a checkpoint is whole)."""
    if world.size == 1:
        return fn

    def wrapped(*args, **kwargs):
        if world.is_main:
            fn(*args, **kwargs)
        world.barrier("waiting for rank 0 to write a checkpoint")

    return wrapped


class LossOf(nn.Module):
    """``loss(model, batch)`` as a module, so DDP's forward (and its gradient hooks) runs it."""

    def __init__(self, model, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch):
        return self.loss(self.model, batch)


class DdpStepper(TorchStepper):
    """`TorchStepper` whose step is one step of the whole job (see the module's docstring)."""

    def __init__(self, model, config, *, loss=None, device: str = "cpu", world: World):
        super().__init__(model, config, loss=loss, device=device)
        self.world = world
        kwargs = {"device_ids": [world.local_rank]} if world.backend == "nccl" else {}
        # The CSM's buffers (rotary tables, codebook offsets) never change: no broadcast every forward.
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
            kwargs["forward_sync_buffers"] = False  # torch >= 2.13
        else:
            kwargs["broadcast_buffers"] = False
        with collective("starting DistributedDataParallel"):  # checks shapes, broadcasts rank 0's weights
            self.ddp = DistributedDataParallel(LossOf(model, self.loss), **kwargs)

    def backward(self, micro: list) -> StepResult:
        real = [b for b in micro if not isinstance(b, Idle)]
        counts = self.world.sum([sum(b.n_backbone for b in real), sum(b.n_decoder for b in real)])
        n_backbone, n_decoder = (max(1, int(n)) for n in counts)  # the whole step's targets, every rank's
        self.optimizer.zero_grad(set_to_none=True)
        backbone_sum = decoder_sum = 0.0
        frames = 0
        with collective("averaging gradients"):
            for i, item in enumerate(micro):
                idle = isinstance(item, Idle)
                batch = (item.batch if idle else item).to(self.device)
                weight = 0.0 if idle else float(self.world.size)  # DDP divides by the world size
                sync = contextlib.nullcontext() if i == len(micro) - 1 else self.ddp.no_sync()
                with sync:  # accumulate locally; all-reduce once, in the last micro-batch's backward
                    with autocast(self.device, self.config.dtype):
                        backbone, decoder = self.ddp(batch)
                    value = (backbone / n_backbone + decoder / n_decoder) * weight
                    (self.scaler.scale(value) if self.scaler else value).backward()
                if not idle:
                    backbone_sum = backbone_sum + backbone.detach()
                    decoder_sum = decoder_sum + decoder.detach()
                    frames += batch.frames
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)  # equal gradients: equal norms
        backbone_sum, decoder_sum, total_frames = self.world.sum([backbone_sum, decoder_sum, frames])
        return StepResult(backbone_sum, decoder_sum, grad_norm, int(total_frames), n_backbone, n_decoder)
