"""Training on torch: the optimizer step, ``--device`` and ``--dtype`` (autocast), for any family.

`TorchStepper` is the optimizer step (`voxlora.families.base.Stepper`), family-agnostic: the loss is
the family's (``loss(model, batch) -> (backbone, decoder)`` sums; CSM's when none is given, as the
loop's tests use it): micro-batches under
autocast, ``backbone / N_backbone + decoder / N_decoder`` backpropagated per micro-batch (fp16:
through the GradScaler), the global norm clipped, then NaN/inf checked in one sync before the
optimizer may touch a weight. Dropout draws from torch's global generator, which checkpoints keep.
"""

import contextlib
import math

import torch

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
    """adamw (decoupled weight decay) | adam (L2) | sgd, over the trainable tensors; Adam's fused
    kernel when every tensor is on a GPU (one launch per step instead of several per tensor)."""
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    params = list(params)
    extra = {}
    if config.optimizer != "sgd" and params and all(p.device.type == "cuda" for p in params):
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
        """NaN or inf in the loss (or the gradient norm) of the step, checked in one sync.

        With fp16's GradScaler the gradient norm is not checked: an overflow there is the scaler's to
        handle (it skips the step and lowers the scale).
        """
        loss = result.backbone + result.decoder
        grad_norm = None if self.scaler else result.grad_norm
        values = torch.stack(
            [loss.detach().float().reshape(()), *([grad_norm.float()] if grad_norm is not None else [])]
        )
        if bool(torch.isfinite(values).all()):
            return None
        loss_value = float(values[0])
        if not math.isfinite(loss_value):
            return f"the loss is {loss_value}"
        return f"the gradient norm is {float(values[1])}"

    def update(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def evaluate(self, batch) -> tuple[float, float]:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.config.dtype):
            b, d = self.loss(self.model, batch.to(self.device))
        self.model.train(was_training)
        return float(b), float(d)

    def finish(self) -> None:
        self.model.eval()
