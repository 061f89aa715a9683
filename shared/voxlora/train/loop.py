"""The trainer: a plain function over prepared sequences, yielding one metrics record per log step.

As mlx-lm's ``tuner/trainer.py``, everything that varies comes in as an argument: ``loss`` (default
`csm_loss`) and ``iterate_batches`` (default `batches.iterate_batches`) can be swapped by tests, and
``save`` is called with the live `TrainState`, optimizer and scaler when a checkpoint is due.

One optimizer step = ``grad_accum`` micro-batches. Each micro-batch contributes
``backbone_sum / N_backbone + decoder_sum / N_decoder`` where the N are the numbers of targets in
the *whole step*, so accumulating micro-batches gives the gradient of one big batch.
Everything random is seeded: data order and decoder frames by (seed, epoch) (`batches.py`),
dropout by torch's global generator, whose state checkpoints keep.

Two ways out before the last step: ``should_stop()`` turning true (a signal, checked between
steps: the loop saves a checkpoint and returns), and a NaN or infinite loss or gradient norm
(`NonFinite`, raised before the optimizer touches the weights, so nothing bad is ever saved).
"""

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from voxlora.errors import VoxloraError
from voxlora.train import batches as batches_mod
from voxlora.train.loss import csm_loss


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


def make_optimizer(params, config) -> torch.optim.Optimizer:
    """adamw (decoupled weight decay) | adam (L2) | sgd, over the trainable tensors."""
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    return kinds[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier for optimizer step ``step`` (0-based) of ``total``.

    >>> [round(lr_factor(s, 10, 2, "cosine"), 3) for s in (0, 1, 2, 9)]
    [0.333, 0.667, 1.0, 0.03]
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1 - progress
    return 1.0


def autocast(device: str, dtype: str):
    """Mixed precision where the device supports it; fp32 runs without autocast."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    return torch.autocast(device_type=torch.device(device).type, dtype=torch_dtype)


def total_steps(store, config) -> int:
    if config.max_steps:
        return config.max_steps
    n = batches_mod.steps_per_epoch(
        store.lengths, config.batch_size, config.grad_accum, config.max_batch_frames
    )
    return config.epochs * n


def evaluate(model, store, config, device="cpu", loss=csm_loss) -> dict:
    """Loss over a whole store, every frame through the depth decoder (no amortisation)."""
    was_training = model.training
    model.eval()
    sums, counts = [0.0, 0.0], [0, 0]
    order = torch.argsort(store.lengths, stable=True)
    with torch.no_grad(), autocast(device, config.dtype):
        for clips in torch.split(order, config.batch_size):
            batch = batches_mod.make_batch(store, clips, 1.0).to(device)
            b, d = loss(model, batch)
            sums[0] += float(b)
            sums[1] += float(d)
            counts[0] += batch.n_backbone
            counts[1] += batch.n_decoder
    model.train(was_training)
    backbone, decoder = sums[0] / max(1, counts[0]), sums[1] / max(1, counts[1])
    return {"val_loss": backbone + decoder, "val_backbone_loss": backbone, "val_decoder_loss": decoder}


def train(
    model,
    store,
    config,
    *,
    loss: Callable = csm_loss,
    iterate_batches: Callable = batches_mod.iterate_batches,
    val_store=None,
    device: str = "cpu",
    state: TrainState | None = None,
    optimizer_state: dict | None = None,
    save: Callable | None = None,
    on_step: Callable[[TrainState], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[dict]:
    """Train ``model``'s tensors that require grad on ``store``; yield metrics (and val) records.

    ``config`` is a resolved `TrainConfig`. ``state`` and ``optimizer_state`` continue a run.
    ``save(state, optimizer, scaler)`` is called every ``config.save_every`` steps, and when
    ``should_stop()`` is true after a step (then the loop returns).
    """
    state = state or TrainState()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires grad")
    optimizer = make_optimizer(params, config)
    steps = total_steps(store, config)
    per_epoch = batches_mod.steps_per_epoch(
        store.lengths, config.batch_size, config.grad_accum, config.max_batch_frames
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps, config.warmup_steps, config.lr_schedule)
    )
    scaler = torch.amp.GradScaler(torch.device(device).type) if config.dtype == "fp16" else None
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state["optimizer"])
        if scaler is not None and optimizer_state.get("scaler"):
            scaler.load_state_dict(optimizer_state["scaler"])
    if state.step:
        for group in optimizer.param_groups:  # the schedule is a function of the step alone
            group["lr"] = config.lr * lr_factor(state.step, steps, config.warmup_steps, config.lr_schedule)
        scheduler.last_epoch = state.step
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]

    model.train()
    max_norm = config.max_grad_norm or math.inf
    window = {"start": time.perf_counter(), "frames": 0, "backbone": 0.0, "decoder": 0.0, "steps": 0}
    for epoch, position, micro in iterate_batches(store, config, state.epoch, state.position):
        if state.step >= steps:
            break
        n_backbone = sum(b.n_backbone for b in micro)
        n_decoder = max(1, sum(b.n_decoder for b in micro))
        optimizer.zero_grad(set_to_none=True)
        step_backbone = step_decoder = 0.0
        for batch in micro:
            batch = batch.to(device)
            with autocast(device, config.dtype):
                backbone, decoder = loss(model, batch)
            value = backbone / n_backbone + decoder / n_decoder
            (scaler.scale(value) if scaler else value).backward()
            step_backbone = step_backbone + backbone.detach()
            step_decoder = step_decoder + decoder.detach()
            window["frames"] += batch.frames
        if scaler is not None:
            scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        check_finite(state.step + 1, step_backbone + step_decoder, None if scaler else grad_norm)
        lr = optimizer.param_groups[0]["lr"]
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        state = TrainState(step=state.step + 1, epoch=epoch, position=position + 1)
        window["backbone"] += step_backbone / n_backbone
        window["decoder"] += step_decoder / n_decoder
        window["steps"] += 1
        if on_step is not None:
            on_step(state)

        out = []
        if state.step % config.log_every == 0 or state.step == steps:
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
                    "grad_norm": float(grad_norm),
                    "frames_per_s": window["frames"] / elapsed,
                    "audio_s_per_s": window["frames"] / store.frame_rate / elapsed,
                }
            )
            window = {"start": time.perf_counter(), "frames": 0, "backbone": 0.0, "decoder": 0.0, "steps": 0}
        paused = time.perf_counter()  # validation and saving are not training throughput
        if val_store is not None and (
            (config.val_every and state.step % config.val_every == 0) or state.step == steps
        ):
            out.append({"step": state.step, **evaluate(model, val_store, config, device, loss)})
        saved = save is not None and config.save_every and state.step % config.save_every == 0
        if saved:
            save(state, optimizer, scaler)  # before the step's lines go out: a line printed is a step kept
        stop = should_stop is not None and should_stop() and state.step < steps
        if stop and save is not None and not saved:
            save(state, optimizer, scaler)
        window["start"] += time.perf_counter() - paused
        yield from out
        if stop:
            break
    model.eval()


def check_finite(step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
    """Raise `NonFinite` when the step's loss (or gradient norm) is NaN or infinite (one sync).

    With fp16's GradScaler the gradient norm is not checked: an overflow there is the scaler's to
    handle (it skips the step and lowers the scale).
    """
    values = torch.stack(
        [loss.detach().float().reshape(()), *([grad_norm.float()] if grad_norm is not None else [])]
    )
    if bool(torch.isfinite(values).all()):
        return
    loss_value = float(values[0])
    if not math.isfinite(loss_value):
        raise NonFinite(step, f"the loss is {loss_value}")
    raise NonFinite(step, f"the gradient norm is {float(values[1])}")
