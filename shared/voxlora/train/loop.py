"""The trainer: a plain function over prepared sequences, yielding one metrics record per log step.

As mlx-lm's ``tuner/trainer.py``, everything that varies comes in as an argument: ``loss`` (default:
the backend's `csm_loss`) and ``iterate_batches`` (default `batches.iterate_batches`) can be swapped
by tests, ``stepper`` makes the backend's optimizer step (`voxlora.families.base.Stepper`; default torch's),
and ``save`` is called with the live `TrainState`, optimizer and scaler when a checkpoint is due.
The loop itself orchestrates only: batches, the learning-rate schedule, logging, the NaN stop,
saving and stop signals; it never asks which backend (torch, MLX) runs the step.

One optimizer step = ``grad_accum`` micro-batches. Each micro-batch contributes
``backbone_sum / N_backbone + decoder_sum / N_decoder`` where the N are the numbers of targets in
the *whole step*, so accumulating micro-batches gives the gradient of one big batch.
Everything random is seeded: data order and decoder frames by (seed, epoch) (`batches.py`),
dropout by the backend's generator (torch: the global one, whose state checkpoints keep).

Two ways out before the last step: ``should_stop()`` turning true (a signal, checked between
steps: the loop saves a checkpoint and returns), and a NaN or infinite loss or gradient norm
(`NonFinite`). A non-finite step is never applied to the weights: MLX's stepper says so at once
(``problem``); torch's skips the update on the device and names the step (``skipped``) only when the
loop next logs, validates or saves, so that no other step waits for the GPU. Either way the run
stops before anything after the bad step is printed or saved.
"""

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from voxlora.backends.torch.train import TorchStepper
from voxlora.errors import VoxloraError
from voxlora.train import batches as batches_mod


class NonFinite(VoxloraError):
    """The loss or the gradient norm of optimizer step ``step`` (1-based) is NaN or infinite."""

    def __init__(self, step: int, what: str):
        super().__init__(f"step {step}: {what}")
        self.step = step


@dataclass
class TrainState:
    """Where training is: enough, with the optimizer state and RNG, to continue exactly."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # epoch of the next step
    position: int = 0  # index of the next step within its epoch


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier for optimizer step ``step`` (0-based) of ``total``.

    >>> [round(lr_factor(s, 10, 2, "cosine"), 3) for s in (0, 1, 2, 9)]
    [0.333, 0.667, 1.0, 0.038]
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1 - progress
    return 1.0


def total_steps(store, config) -> int:
    if config.max_steps:
        return config.max_steps
    n = batches_mod.steps_per_epoch(
        store.lengths, config.batch_size, config.grad_accum, config.max_batch_frames
    )
    return config.epochs * n


def evaluate(stepper, store, config) -> dict:
    """Loss over a whole store, every frame through the depth decoder (no amortisation)."""
    sums, counts = [0.0, 0.0], [0, 0]
    order = torch.argsort(store.lengths, stable=True)
    for clips in torch.split(order, config.batch_size):
        batch = store.batch(clips, 1.0)
        b, d = stepper.evaluate(batch)
        sums[0] += float(b)
        sums[1] += float(d)
        counts[0] += batch.n_backbone
        counts[1] += batch.n_decoder
    backbone, decoder = sums[0] / max(1, counts[0]), sums[1] / max(1, counts[1])
    return {"val_loss": backbone + decoder, "val_backbone_loss": backbone, "val_decoder_loss": decoder}


def train(
    model,
    store,
    config,
    *,
    loss: Callable | None = None,
    iterate_batches: Callable = batches_mod.iterate_batches,
    stepper: Callable | None = None,
    val_store=None,
    device: str = "cpu",
    state: TrainState | None = None,
    optimizer_state: dict | None = None,
    save: Callable | None = None,
    on_step: Callable[[TrainState], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    save_due: Callable[[int], bool] | None = None,
) -> Iterator[dict]:
    """Train ``model``'s trainable tensors on ``store``; yield metrics (and val) records.

    ``config`` is a resolved `TrainConfig`. ``stepper(model, config, loss=loss)`` makes the
    backend's `Stepper` (default: torch's on ``device``). ``state`` and ``optimizer_state`` continue
    a run. ``save(state, optimizer, scaler)`` is called every ``config.save_every`` steps, and when
    ``should_stop()`` is true after a step (then the loop returns); ``save_due(step)``, when given,
    decides instead of ``save_every`` (`autosave.Due`: every N steps or M minutes).
    """
    state = state or TrainState()
    make_stepper = stepper or functools.partial(TorchStepper, device=device)
    stepper = make_stepper(model, config, loss=loss)
    steps = total_steps(store, config)
    per_epoch = batches_mod.steps_per_epoch(
        store.lengths, config.batch_size, config.grad_accum, config.max_batch_frames
    )
    if optimizer_state is not None:
        stepper.load_state(optimizer_state)
    first_step = state.step

    def check() -> None:  # a bad step found on the device since the last check (one host sync)
        bad = stepper.skipped() if hasattr(stepper, "skipped") else None
        if bad is not None:
            raise NonFinite(first_step + bad[0], bad[1])

    window = {"start": time.perf_counter(), "frames": 0, "backbone": 0.0, "decoder": 0.0, "steps": 0}
    padding = [0, 0]  # padded positions, all positions of the log window's batches (host tensors: no sync)
    for epoch, position, micro in iterate_batches(store, config, state.epoch, state.position):
        if state.step >= steps:
            break
        result = stepper.backward(micro)
        problem = stepper.problem(result)
        if problem is not None:
            raise NonFinite(state.step + 1, problem)
        lr = config.lr * lr_factor(state.step, steps, config.warmup_steps, config.lr_schedule)
        stepper.update(lr)
        state = TrainState(step=state.step + 1, epoch=epoch, position=position + 1)
        window["frames"] += result.frames
        window["backbone"] += result.backbone / result.n_backbone
        window["decoder"] += result.decoder / result.n_decoder
        window["steps"] += 1
        for b in micro:  # a family's batch may say how much of it is padding
            padded, total = b.padding() if hasattr(b, "padding") else (0, 0)
            padding[0], padding[1] = padding[0] + padded, padding[1] + total
        if on_step is not None:
            on_step(state)

        out = []
        if state.step % config.log_every == 0 or state.step == steps:
            check()
            elapsed = max(time.perf_counter() - window["start"], 1e-9)
            backbone_loss = float(window["backbone"]) / window["steps"]
            decoder_loss = float(window["decoder"]) / window["steps"]
            out.append(
                {
                    "step": state.step,
                    "epoch": round(epoch + (position + 1) / per_epoch, 4),
                    "loss": backbone_loss + decoder_loss,
                    "backbone_loss": backbone_loss,
                    "decoder_loss": decoder_loss,
                    "lr": lr,
                    "grad_norm": float(result.grad_norm),
                    "frames_per_s": window["frames"] / elapsed,
                    "audio_s_per_s": window["frames"] / store.frame_rate / elapsed,
                    "pad_fraction": round(padding[0] / max(padding[1], 1), 4),  # compute spent on padding
                }
            )
            compiled = getattr(stepper, "compiled", None)  # --compile: graphs compiled so far (one per shape)
            if compiled is not None:
                out[-1]["compiles"] = compiled.graphs
            window = {"start": time.perf_counter(), "frames": 0, "backbone": 0.0, "decoder": 0.0, "steps": 0}
            padding = [0, 0]
        paused = time.perf_counter()  # validation and saving are not training throughput
        if val_store is not None and (
            (config.val_every and state.step % config.val_every == 0) or state.step == steps
        ):
            check()
            out.append({"step": state.step, **evaluate(stepper, val_store, config)})
        if save_due is not None:
            saved = save is not None and save_due(state.step)
        else:
            saved = save is not None and config.save_every and state.step % config.save_every == 0
        if saved:  # before the step's lines go out: a line printed is a step kept
            check()
            save(state, stepper.optimizer, stepper.scaler)
        stop = should_stop is not None and should_stop() and state.step < steps
        if stop and save is not None and not saved:
            check()
            save(state, stepper.optimizer, stepper.scaler)
        window["start"] += time.perf_counter() - paused
        yield from out
        if stop:
            break
    stepper.finish()
