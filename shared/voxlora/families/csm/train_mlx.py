"""lora-train on MLX: mlx-audio's sesame model, `backends.mlx`'s LoRA layers, loss and step (a `TrainModel`).

What is shared with the torch backend stays shared: the adapter (a fresh one is drawn by
`peft_bridge.new_adapter_for`, tensor for tensor what `mlx_lora.new_adapter` draws), the batches
(`Batch`, read by `mlx_loss`), and the Mimi codes: they come from the folder's *torch* Mimi, kept with the
processor (`CodecBundle`; the rest of the torch CSM is dropped after loading), so both backends read and write the same
codes cache and train on the same codes. Only the model, its optimizer and the step are MLX's.

Checkpoints have the torch backend's layout: the adapter files, and the optimizer state as
``optimizer.<i>.<m|v>`` tensors (i: the trained tensor's index in ``trained``) with the optimizer's
step count in ``param_groups``. The tensors are MLX's own (``lora_a`` is (in, r)), so a checkpoint
resumes on the backend that wrote it; its adapter starts a new run on either (``--adapter``).

MLX's global random generator cannot be read back, so dropout is re-seeded from (seed, step) at
each step: a resumed run draws the same masks without saving a generator state.

Not here: ``--full`` (writing a whole MLX model back in sesame/csm-1b's layout) and fp16 (no loss
scaling on MLX); both are refused with one line (`train.config.resolve`).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np
import torch
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from voxlora.backends.mlx import csm as mlx_csm
from voxlora.backends.mlx import lora as mlx_lora
from voxlora.backends.mlx import loss as mlx_loss
from voxlora.backends.mlx import train as mlx_train
from voxlora.backends.torch.rng import restore_rng, rng_tensors
from voxlora.codec_option import codec_folder
from voxlora.errors import VoxloraError
from voxlora.families.base import StepResult
from voxlora.families.csm.data import CsmData

DEVICES = {"auto": None, "cpu": mx.cpu, "mps": mx.gpu}  # mps: the Apple GPU, MLX's default there


@dataclass
class CodecBundle:
    """What data preparation reads of a CSM (`sequences.prepare_clips`), without the CSM: torch Mimi."""

    processor: object  # transformers' CsmProcessor
    codec: object  # transformers' MimiModel, fp32, the same weights as the CSM's codec_model
    config: object  # transformers' CsmConfig
    path: Path

    @property
    def sample_rate(self) -> int:
        return int(self.config.codec_config.sampling_rate)


def load_codec_bundle(folder: Path) -> CodecBundle:
    """The processor, config and torch Mimi of a sesame/csm-1b-layout folder.

    Only the codec's tensors are read (`codec_alone`), never the rest of the torch CSM: the
    codec is the torch backend's, weight for weight, so the codes cache is shared.
    """
    from voxlora.families.csm.codec_alone import load_codec
    from voxlora.families.csm.synth_mlx import load_processor

    codec, config = load_codec(folder)
    return CodecBundle(processor=load_processor(folder), codec=codec, config=config, path=Path(folder))


class OptimizerState:
    """An MLX optimizer's state in torch's ``state_dict`` shape, for `checkpoint.write_checkpoint`.

    ``{"state": {i: {"m": tensor, "v": tensor}}, "param_groups": [{"step": n}]}``, i indexing
    ``names`` (the trained tensors' MLX paths); SGD has no per-tensor state.
    """

    def __init__(self, optimizer, names: list[str]):
        self.optimizer, self.names = optimizer, names

    def state_dict(self) -> dict:
        index = {name: i for i, name in enumerate(self.names)}
        state: dict = {}
        for key, value in tree_flatten(self.optimizer.state):
            param, _, entry = key.rpartition(".")
            if param in index:
                state.setdefault(index[param], {})[entry] = torch.from_numpy(np.array(value))
        return {"state": state, "param_groups": [{"step": int(self.optimizer.step)}]}

    def load_state_dict(self, saved: dict) -> None:
        flat = [
            (f"{self.names[int(i)]}.{entry}", mx.array(t.numpy()))
            for i, entries in saved["state"].items()
            for entry, t in entries.items()
        ]
        flat.append(("step", mx.array(int(saved["param_groups"][0]["step"]), mx.uint64)))
        state = tree_unflatten(flat)
        state["learning_rate"] = self.optimizer.state["learning_rate"]
        self.optimizer.state = state


class MlxStepper:
    """`mlx_train.Stepper` as the loop's `Stepper` (NaN check, checkpointable optimizer state)."""

    scaler = None

    def __init__(self, model, config, *, loss=None):
        self.config = config
        self.inner = mlx_train.Stepper(model, config, loss=loss or mlx_loss.csm_loss)
        self.names = [name for name, _ in tree_flatten(model.trainable_parameters())]
        if not self.names:
            raise ValueError("nothing to train: no parameter is trainable")
        self.optimizer = OptimizerState(self.inner.optimizer, self.names)

    def load_state(self, optimizer_state: dict) -> None:
        self.optimizer.load_state_dict(optimizer_state["optimizer"])

    def backward(self, micro: list) -> StepResult:
        mx.random.seed(self.config.seed * 1_000_003 + int(self.inner.optimizer.step))  # dropout
        return self.inner.backward(micro)

    def problem(self, result: StepResult) -> str | None:
        loss = result.backbone + result.decoder
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if not math.isfinite(result.grad_norm):
            return f"the gradient norm is {result.grad_norm}"
        return None

    def skipped(self) -> None:  # problem() says it at once: MLX's floats are already on the host
        return None

    def update(self, lr: float) -> None:
        self.inner.update(lr)

    def evaluate(self, batch) -> tuple[float, float]:
        return self.inner.evaluate(batch)

    def finish(self) -> None:
        self.inner.model.eval()


class MlxTraining(CsmData):
    """A CSM loaded with mlx-audio for training (``--device`` auto, cpu or mps; ``--dtype`` fp32 or bf16)."""

    name = "mlx"
    device = "cpu"  # where the torch Mimi encodes uncached clips

    def __init__(self, config, source):
        if config.device not in DEVICES:
            raise VoxloraError(f"--device {config.device}: the MLX backend runs on auto, cpu or mps")
        if config.device == "mps" and not mx.metal.is_available():
            raise VoxloraError("--device mps: not available on this machine")
        if DEVICES[config.device] is not None:
            mx.set_default_device(DEVICES[config.device])
        self.config = config
        codec = codec_folder(source, config.codec, "lora-train")
        self.bundle = mlx_csm.load_mlx_csm(source, dtype=config.dtype, codec=False, codec_folder=codec)
        self.data = load_codec_bundle(codec or self.bundle.path)
        self.frame_rate = float(self.data.codec.config.frame_rate)
        self.max_positions = int(self.data.config.max_position_embeddings)

    def stepper(self, model, config, *, loss=None) -> MlxStepper:
        return MlxStepper(model, config, loss=loss)

    def release_codec(self) -> None:
        self.data.codec = None  # the torch Mimi that filled the codes cache; MLX trains without it

    def make_trainable(self, adapter):
        model, _ = mlx_lora.apply_adapter(self.bundle.model, adapter, trainable=True)
        if self.config.dtype != "fp32":  # master weights in fp32 whatever the compute dtype
            model.update(tree_map(lambda p: p.astype(mx.float32), model.trainable_parameters()))
            mx.eval(model.parameters())
        return model, [name for name, _ in tree_flatten(model.trainable_parameters())]

    @property
    def where(self) -> str:
        return f"mlx {mx.default_device().type.name}"

    def trained_params(self, model) -> int:
        return sum(p.size for _, p in tree_flatten(model.trainable_parameters()))

    def adapter_from_model(self, model, like):
        return mlx_lora.adapter_from_model(model, like=like)

    def save_model(self, model, folder) -> None:
        raise VoxloraError("--full is not available with --backend mlx")

    rng_tensors = staticmethod(rng_tensors)  # torch's (MLX dropout is seeded per step: see above)
    restore_rng = staticmethod(restore_rng)
