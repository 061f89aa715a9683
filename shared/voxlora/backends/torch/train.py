"""Training on torch: the optimizer step, ``--device`` and ``--dtype`` (autocast), for any family.

`TorchStepper` is the optimizer step (`voxlora.families.base.Stepper`), family-agnostic: the loss is
the family's (``loss(model, batch) -> (backbone, decoder)`` sums; CSM's when none is given, as the
loop's tests use it): micro-batches under
autocast, ``backbone / N_backbone + decoder / N_decoder`` backpropagated per micro-batch (fp16:
through the GradScaler), the global norm clipped. Dropout draws from torch's global generator,
which checkpoints keep.

No step waits for the device (on a GPU the host queues the next step while this one runs): a NaN or
infinite loss or gradient norm is found on the device, and the fused optimizer skips that update
there (its ``found_inf``, GradScaler's mechanism: weights, moments and step count untouched). The
first such step is remembered on the device and read by `TorchStepper.skipped` when the loop next
logs or saves, which stops the run naming it: a non-finite update never reaches the weights.
"""

import contextlib
import math

import torch

from voxlora.backends.torch.compile import compiled_of
from voxlora.errors import VoxloraError
from voxlora.families.base import StepResult


def pick_device(name: str) -> str:
    """``auto`` (cuda, else mps, else cpu), ``cpu``, ``mps``, ``cuda`` or ``cuda:N``; one line if absent."""
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    cuda = name == "cuda" or name.startswith("cuda:")
    index = int(name.partition(":")[2] or 0) if cuda and name.partition(":")[2].isdigit() else 0
    if (cuda and (not torch.cuda.is_available() or index >= torch.cuda.device_count())) or (
        name == "mps" and not mps
    ):
        raise VoxloraError(f"--device {name}: not available on this machine")
    if cuda:  # fp32 work may use TF32 tensor cores (bf16 autocast is the default on a GPU anyway)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return name


def make_optimizer(params, config) -> torch.optim.Optimizer:
    """adamw (decoupled weight decay) | adam (L2) | sgd, over the trainable tensors, with torch's
    fused kernel (one launch per step instead of several per tensor; CPU, CUDA and MPS have one),
    whose ``found_inf`` skips a non-finite step on the device."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    params = list(params)
    extra = {}
    if params and all(p.device.type in _get_fused_kernels_supported_devices() for p in params):
        extra["fused"] = True
    return kinds[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay, **extra)


def autocast(device: str, dtype: str):
    """Mixed precision where the device supports it; fp32 runs without autocast."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    return torch.autocast(device_type=torch.device(device).type, dtype=torch_dtype)


class TorchStepper:
    """The trainable tensors of a torch model, their optimizer and (fp16) GradScaler."""

    def __init__(self, model, config, *, loss=None, device: str = "cpu"):
        from voxlora.families.csm.loss import csm_loss

        self.model, self.config, self.device = model, config, device
        self.loss = loss or csm_loss
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("nothing to train: no parameter requires grad")
        self.optimizer = make_optimizer(self.params, config)
        self.scaler = torch.amp.GradScaler(torch.device(device).type) if config.dtype == "fp16" else None
        self.max_norm = config.max_grad_norm or math.inf
        self.steps = 0  # problem() calls: the step numbers `skipped` names
        first = self.params[0]
        self.first_bad = torch.zeros(3, device=first.device)  # (step, kind, value) of the first bad step
        self.skip = None  # () float on the device: 1.0 skips the coming update
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # inside peft's wrapper
        self.compiled = compiled_of(base)  # --compile's `Compiled` (its graph count goes into the metrics)
        model.train()

    def load_state(self, optimizer_state: dict) -> None:
        self.optimizer.load_state_dict(optimizer_state["optimizer"])
        if self.scaler is not None and optimizer_state.get("scaler"):
            self.scaler.load_state_dict(optimizer_state["scaler"])

    def backward(self, micro: list) -> StepResult:
        n_backbone = sum(b.n_backbone for b in micro)
        n_decoder = max(1, sum(b.n_decoder for b in micro))
        self.optimizer.zero_grad(set_to_none=True)
        step_backbone = step_decoder = 0.0
        frames = 0
        for batch in micro:
            batch = batch.to(self.device)
            with autocast(self.device, self.config.dtype):
                backbone, decoder = self.loss(self.model, batch)
            value = backbone / n_backbone + decoder / n_decoder
            (self.scaler.scale(value) if self.scaler else value).backward()
            step_backbone = step_backbone + backbone.detach()
            step_decoder = step_decoder + decoder.detach()
            frames += batch.frames
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)
        return StepResult(step_backbone, step_decoder, grad_norm, frames, n_backbone, n_decoder)

    def problem(self, result: StepResult) -> str | None:
        """None: a non-finite step is found on the device, without waiting for it (see the module's
        docstring), skipped by `update` and named by `skipped` at the next log or save.

        With fp16's GradScaler only the loss counts: an overflow in the gradients is the scaler's to
        handle (the step is skipped, the scale lowered), as it always was.
        """
        self.steps += 1
        loss = (result.backbone + result.decoder).detach().float().reshape(())
        loss_bad = ~torch.isfinite(loss)
        grad_bad = ~torch.isfinite(result.grad_norm.float())
        bad = loss_bad if self.scaler is not None else loss_bad | grad_bad
        first = bad & (self.first_bad[0] == 0)  # () bool: the first bad step since training began
        entry = torch.stack(
            [
                loss.new_full((), float(self.steps)),
                torch.where(loss_bad, 1.0, 2.0),
                torch.where(loss_bad, loss, result.grad_norm.float()),
            ]
        )
        self.first_bad = torch.where(first, entry, self.first_bad)  # (3,): step, 1 loss | 2 grad, value
        self.skip = (loss_bad | grad_bad).float()  # the optimizer's found_inf
        return None

    def skipped(self) -> tuple[int, str] | None:
        """(step, what) of the first non-finite step, counted from 1 in this stepper's life, or None.

        The one read of the device: the loop calls it only when it logs or saves."""
        step, kind, value = self.first_bad.tolist()
        if not step:
            return None
        return int(step), f"the {'loss' if kind == 1 else 'gradient norm'} is {value}"

    def update(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.optimizer.defaults.get("fused"):
            self.optimizer.found_inf = self.skip  # 1.0: skipped on the device (None: no check was made)
        elif self.skip is not None and bool(self.skip):  # no fused kernel here: one sync per step
            if self.scaler is not None:
                self.scaler.update()
            return
        self.optimizer.step()
        if self.scaler is not None:  # its found_inf came from unscale_; the scale moves on the device
            self.scaler.update()
        self.skip = None

    def evaluate(self, batch) -> tuple[float, float]:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.config.dtype):
            b, d = self.loss(self.model, batch.to(self.device))
        self.model.train(was_training)
        return float(b), float(d)

    def finish(self) -> None:
        self.model.eval()
        if self.compiled is not None:
            self.compiled.report()
