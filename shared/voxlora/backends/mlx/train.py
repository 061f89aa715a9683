"""One training step on MLX, with the torch loop's options and arithmetic (`voxlora.train.loop`).

What the torch loop does per optimizer step, the same way here, so a loop that asks a backend for
``step`` trains either model:

* the step's loss is ``backbone_sum / N_backbone + decoder_sum / N_decoder`` over its micro-batches,
  the N counted over the whole step, gradients summed over micro-batches (= one big batch);
* the global gradient norm is clipped to ``max_grad_norm`` (torch's ``clip_grad_norm_`` formula);
* optimizers: ``sgd`` (L2 weight decay, as torch), ``adam`` (bias-corrected, L2 weight decay added
  to the gradient, as torch), ``adamw`` (bias-corrected, decoupled weight decay, as torch). mlx's
  own defaults differ (no bias correction, AdamW decay 0.01), so every setting is passed explicitly;
* the learning rate is set before each update from `loop.lr_factor` (the caller passes it).

Only parameters left trainable (`mlx_lora.apply_adapter(..., trainable=True)`) are updated.
"""

import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from voxlora.backends.mlx.loss import batch_arrays, csm_loss
from voxlora.families.base import StepResult  # backbone, decoder, grad_norm, frames, n_backbone, n_decoder


def make_optimizer(config) -> optim.Optimizer:
    """adamw | adam | sgd with torch's semantics, from a `TrainConfig` (lr, weight_decay, optimizer)."""
    if config.optimizer == "sgd":
        return optim.SGD(learning_rate=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return optim.Adam(learning_rate=config.lr, bias_correction=True)
    if config.optimizer == "adamw":
        return optim.AdamW(learning_rate=config.lr, weight_decay=config.weight_decay, bias_correction=True)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def _step_loss(loss):
    def step_loss(model, arrays, n_backbone, n_decoder):
        backbone, decoder = loss(model, arrays)
        return backbone / n_backbone + decoder / n_decoder, backbone, decoder

    return step_loss


def grad_norm(grads) -> mx.array:
    return mx.sqrt(sum((g.astype(mx.float32).square().sum() for _, g in tree_flatten(grads)), mx.array(0.0)))


class Stepper:
    """The model, its optimizer and `step`: everything the training loop asks of a backend.

    ``step`` = `backward` (the step's gradients, clipped, kept) then `update` (the optimizer applies
    them); the loop calls the two halves so it can refuse a NaN step between them.
    """

    def __init__(self, model, config, loss=csm_loss):
        self.model = model
        self.config = config
        self.loss = loss
        self.optimizer = make_optimizer(config)
        self._value_and_grad = nn.value_and_grad(model, _step_loss(loss))
        self._grads = None

    def step(self, micro: list, lr: float) -> StepResult:
        """One optimizer step over the micro-batches ``micro`` (`Batch` objects) at learning rate ``lr``."""
        result = self.backward(micro)
        self.update(lr)
        return result

    def backward(self, micro: list) -> StepResult:
        """The gradients of one step (clipped, kept for `update`); loss sums and norm as floats."""
        self.model.train()
        n_backbone = sum(b.n_backbone for b in micro)
        n_decoder = max(1, sum(b.n_decoder for b in micro))
        grads, backbone, decoder = None, 0.0, 0.0
        for batch in micro:
            (_, b, d), g = self._value_and_grad(self.model, batch_arrays(batch), n_backbone, n_decoder)
            grads = g if grads is None else tree_map(mx.add, grads, g)
            backbone, decoder = backbone + b, decoder + d
        norm = grad_norm(grads)
        max_norm = self.config.max_grad_norm or math.inf
        if math.isfinite(max_norm):
            scale = mx.minimum(max_norm / (norm + 1e-6), 1.0)  # torch's clip_grad_norm_
            grads = tree_map(lambda g: g * scale.astype(g.dtype), grads)
        mx.eval(grads, backbone, decoder, norm)
        self._grads = grads
        return StepResult(
            backbone=float(backbone),
            decoder=float(decoder),
            grad_norm=float(norm),
            frames=sum(b.frames for b in micro),
            n_backbone=n_backbone,
            n_decoder=n_decoder,
        )

    def update(self, lr: float) -> None:
        """Apply the gradients of the last `backward` at learning rate ``lr``."""
        grads, self._grads = self._grads, None
        if self.config.optimizer == "adam" and self.config.weight_decay:
            params = self.model.trainable_parameters()
            grads = tree_map(lambda g, p: g + self.config.weight_decay * p, grads, params)
        self.optimizer.learning_rate = lr
        self.optimizer.update(self.model, grads)
        mx.eval(self.model.parameters(), self.optimizer.state)

    def evaluate(self, batch) -> tuple[float, float]:
        """Loss sums of one batch without gradients or dropout."""
        was_training = self.model.training
        self.model.eval()
        b, d = self.loss(self.model, batch)
        self.model.train(was_training)
        return float(b), float(d)

    def optimizer_tensors(self) -> dict[str, np.ndarray]:
        """The optimizer's state as ``optimizer.<path>`` arrays, for a checkpoint's safetensors."""
        return {f"optimizer.{k}": np.array(v) for k, v in tree_flatten(self.optimizer.state)}

    def load_optimizer_tensors(self, tensors: dict) -> None:
        state = [
            (k.removeprefix("optimizer."), mx.array(v))
            for k, v in tensors.items()
            if k.startswith("optimizer.")
        ]
        self.optimizer.state = tree_unflatten(state)
