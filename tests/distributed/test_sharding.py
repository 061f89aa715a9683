"""How a step of the whole job is shared out between processes: no processes needed to check it."""

import dataclasses

import pytest
import torch
from voxlora.train import distributed
from voxlora.train.batches import plan_epoch
from voxlora.train.config import TrainConfig
from voxlora.train.distributed import Idle, World, deal, job_config, shard
from voxlora.train.launch import torchrun_args, without_nproc

LENGTHS = torch.tensor([9, 4, 7, 7, 3, 12, 5, 8, 6, 10, 4, 11, 2])  # 13 clips: ragged last steps


def plan_batches(store, config, start_epoch=0, start_position=0):
    """iterate_batches' shape over plan_epoch (clip indices stand in for batches)."""
    epoch, position = start_epoch, start_position
    while True:
        plan = plan_epoch(
            store, config.seed, epoch, config.batch_size, config.grad_accum, config.max_batch_frames
        )
        for p in range(position, len(plan)):
            yield epoch, p, [c.tolist() for c in plan[p]]
        epoch, position = epoch + 1, 0


def steps(iterate, config, n, start=(0, 0)):
    it = iterate(LENGTHS, config, *start)
    return [next(it) for _ in range(n)]


def step_clips(micro) -> list[int]:
    return sorted(c for m in micro if not isinstance(m, Idle) for c in m)


def test_dealing_is_round_robin_and_a_rank_without_a_share_runs_an_idle_batch():
    assert deal(["a", "b", "c", "d", "e"], 0, 2) == ["a", "c", "e"]
    assert deal(["a", "b", "c", "d", "e"], 1, 2) == ["b", "d"]
    assert deal(["a"], 1, 2) == [Idle("a")]


def test_one_process_is_left_alone():
    config = TrainConfig(batch_size=2)
    assert shard(plan_batches, World()) is plan_batches
    assert job_config(config) is config


@pytest.mark.parametrize("frames", [None, 24])
@pytest.mark.parametrize("processes", [2, 3, 4])
def test_ranks_share_exactly_the_one_process_step(processes, frames):
    """N ranks with --grad-accum g train on the clips of one process with --grad-accum N*g, step by step."""
    config = TrainConfig(batch_size=2, grad_accum=2, max_batch_frames=frames, seed=5)
    whole = job_config(dataclasses.replace(config, processes=processes))
    alone = steps(plan_batches, dataclasses.replace(config, grad_accum=2 * processes), 12)
    ranks = [steps(shard(plan_batches, World(rank=r, size=processes)), whole, 12) for r in range(processes)]
    for i, (epoch, position, micro) in enumerate(alone):
        shares = [rank[i] for rank in ranks]
        assert {(e, p) for e, p, _ in shares} == {(epoch, position)}  # the same data position on every rank
        assert sorted(c for _, _, m in shares for c in step_clips(m)) == step_clips(micro)
        assert all(m for _, _, m in shares)  # every rank has something to run (Idle when no share)


def test_without_frame_budget_n_processes_of_batch_b_see_one_process_of_batch_n_times_b():
    for epoch in range(3):
        by_rank = plan_epoch(LENGTHS, 0, epoch, batch_size=2, grad_accum=2)  # 2 processes x --batch-size 2
        alone = plan_epoch(LENGTHS, 0, epoch, batch_size=4, grad_accum=1)
        assert [torch.cat(s).tolist() for s in by_rank] == [torch.cat(s).tolist() for s in alone]


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 4), (2, 1), (4, 3)])
def test_a_resumed_run_keeps_its_steps_on_another_number_of_processes(before, after):
    """A checkpoint of a 4-process run resumes on 2: from its (epoch, position) the same clips follow."""
    config = job_config(TrainConfig(batch_size=2, seed=1, processes=before))  # as the run started
    first = steps(plan_batches, config, 10)
    epoch, position, _ = first[5]  # the checkpoint's data position: step 6 comes next
    ranks = [
        steps(shard(plan_batches, World(rank=r, size=after)), config, 4, (epoch, position))
        for r in range(after)
    ]
    for i, (e, p, micro) in enumerate(first[5:9]):
        assert {(re, rp) for re, rp, _ in (rank[i] for rank in ranks)} == {(e, p)}
        assert sorted(c for rank in ranks for c in step_clips(rank[i][2])) == step_clips(micro)


def test_several_processes_refuse_what_they_cannot_share():
    world = World(rank=0, size=2)
    with pytest.raises(distributed.VoxloraError, match="--manifest -: several processes"):
        distributed.check_config(TrainConfig(manifest="-", backend="torch"), world)
    with pytest.raises(distributed.VoxloraError, match="--backend mlx trains on one process"):
        distributed.check_config(TrainConfig(manifest="t.jsonl", backend="mlx"), world)
    distributed.check_config(TrainConfig(manifest="-", backend="mlx"), World())  # one process: anything


def test_the_stop_is_agreed_and_one_process_needs_no_collective():
    class Stop:
        requested = None

    stop = Stop()
    should_stop = distributed.agreed_stop(World(), stop)
    assert should_stop() is False
    stop.requested = 15
    assert should_stop() is True
    assert distributed.agreed_stop(World(), None) is None


def test_a_dead_peer_reads_as_one_line():
    e = RuntimeError(
        "[/__w/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:63128: "
        "Connection reset by peer. This is typically caused by a remote worker hanging"
    )
    assert distributed.is_peer_failure(e) and not distributed.is_peer_failure(RuntimeError("shape mismatch"))
    message = distributed.peer_lost_message("averaging gradients", e)
    assert "\n" not in message and "Connection reset by peer" in message and "--resume" in message
    assert "pair.cc" not in message


def test_nproc_becomes_torchrun_on_this_machine():
    argv = ["--model", "m", "--nproc", "2", "-o", "out", "--nproc=3", "--lr", "1e-3"]
    assert without_nproc(argv) == ["--model", "m", "-o", "out", "--lr", "1e-3"]
    assert torchrun_args(2, ["--model", "m"]) == [
        "--standalone", "--nproc_per_node", "2", "-m", "voxlora.cli.lora_train", "--model", "m",
    ]  # fmt: skip
