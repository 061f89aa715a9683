"""The one interface lora-train speaks through, whichever array library trains the model (torch or MLX).

`load_backend` picks the backend once, from ``TrainConfig.backend``; the recipe (`train.recipe`) and
the loop (`train.loop`) then call the same few members and never ask which backend they have::

    backend = load_backend(config, folder)         # the base, loaded once (torch: the whole CSM)
    clips = prepare_clips(records, backend.data, cache, ..., backend.device)   # shared: torch Mimi codes
    model, names = backend.make_trainable(adapter)  # LoRA (+ embeddings) or --full
    for record in loop.train(model, store, config, stepper=backend.stepper): ...
    backend.adapter_from_model(model, like=adapter)   # the trained adapter, peft layout, either backend

A `Stepper` is what the loop asks of a backend per optimizer step: ``backward`` (gradients of the
step's micro-batches, clipped, with the loss sums and the norm), ``problem`` (is it NaN or
infinite), ``update`` (apply it at a learning rate), ``evaluate``, and an ``optimizer`` with
``state_dict`` / ``load_state_dict`` in torch's shape ({"state": {index: {name: tensor}},
"param_groups": [...]}) for `checkpoint.write_checkpoint`.

The data side is one: batches are the torch trainer's `Batch` (the MLX loss reads them too), and
Mimi codes always come from the torch Mimi of the model folder, so the codes cache is shared by both
backends (the MLX backend loads only that codec and the processor in torch, not the CSM).

Implementations: `voxlora.backends.train_torch` (transformers + peft) and
`voxlora.backends.train_mlx` (mlx-audio's sesame model, `mlx_lora`, `mlx_train`).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from voxlora.backends import require_mlx


@dataclass
class StepResult:
    """One optimizer step's gradients, as `Stepper.backward` leaves them (before the update)."""

    backbone: Any  # cross-entropy sum over the step's backbone targets (a 0-d tensor/array, or a float)
    decoder: Any  # the same for the depth decoder's targets
    grad_norm: Any  # global gradient norm before clipping
    frames: int  # audio frames in the step
    n_backbone: int = 1  # backbone targets in the step (the loss is backbone / n_backbone + ...)
    n_decoder: int = 1  # depth-decoder targets in the step (at least 1)


class Stepper(Protocol):
    """The trainable model's optimizer, one step at a time (made by ``backend.stepper``)."""

    optimizer: Any  # state_dict() / load_state_dict() in torch's layout (checkpoints)
    scaler: Any  # torch's fp16 GradScaler, or None

    def backward(self, micro: list) -> StepResult:
        """Gradients of one step over the micro-batches (`Batch`), clipped to ``max_grad_norm``."""

    def problem(self, result: StepResult) -> str | None:
        """'the loss is nan' / 'the gradient norm is inf' when the step must not be applied, else None."""

    def update(self, lr: float) -> None:
        """Apply the gradients of the last `backward` at learning rate ``lr``."""

    def evaluate(self, batch) -> tuple[float, float]:
        """(backbone, decoder) loss sums of one batch, without gradients or dropout."""

    def load_state(self, optimizer_state: dict) -> None:
        """Continue from a checkpoint's {"optimizer": state_dict, "scaler": state_dict | None}."""

    def finish(self) -> None:
        """Training is over: the model goes to eval mode."""


class TrainBackend(Protocol):
    """A CSM loaded for training on one array library."""

    name: str  # "torch" | "mlx"
    device: str  # where the torch Mimi encodes clips
    where: str  # where the model trains, for the log ("cpu", "cuda", "mlx gpu")
    data: (
        Any  # what prepare_clips and build_store read: .processor, .codec (torch Mimi), .config, .sample_rate
    )
    frame_rate: float  # codec frames per second
    max_positions: int  # the backbone's positions: a clip must fit

    def stepper(self, model, config, *, loss=None) -> Stepper:
        """The `Stepper` over ``model``'s trainable tensors (``loss``: the backend's csm_loss if None)."""

    def release_codec(self) -> None:
        """Every clip's codes are prepared: free the codec's weights unless saving needs them (--full)."""

    def make_trainable(self, adapter) -> tuple[Any, list[str]]:
        """(model to train, names of the trained tensors, in optimizer order)."""

    def trained_params(self, model) -> int:
        """How many numbers training changes."""

    def adapter_from_model(self, model, like):
        """The trained adapter (`voxlora.adapter.Adapter`, peft layout) taken out of ``model``."""

    def save_model(self, model, folder: Path) -> None:
        """--full: the whole trained model into ``folder`` (config and weights, the base's layout)."""

    def rng_tensors(self) -> dict:
        """Every random generator's state, as safetensors-ready torch tensors (``rng.*``)."""

    def restore_rng(self, tensors: dict) -> None: ...


def load_backend(config, source) -> TrainBackend:
    """The base model at ``source`` on ``config.backend`` (resolved: torch | mlx), loaded once."""
    if config.backend == "mlx":
        require_mlx()
        from voxlora.backends.train_mlx import MlxTraining

        return MlxTraining(config, source)
    from voxlora.backends.train_torch import TorchTraining

    return TorchTraining(config, source)
