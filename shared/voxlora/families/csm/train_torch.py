"""CSM training on torch: transformers' CSM, peft's LoRA, `voxlora.backends.torch.train`'s step.

The torch half of CSM's `voxlora.families.base.TrainModel`; the data side (Mimi codes, sequences)
is `data.CsmData`, shared with the MLX half. Dropout draws from torch's global generator, which
checkpoints keep (`voxlora.backends.torch.rng`).
"""

import gc

import torch

from voxlora.backends.torch.rng import restore_rng, rng_tensors
from voxlora.backends.torch.train import TorchStepper, pick_device
from voxlora.families.csm.data import CsmData


def checkpoint_layers(csm) -> None:
    """Gradient checkpointing of the backbone's and depth decoder's layers (transformers' own,
    non-reentrant: frozen inputs need no ``requires_grad``): activations are kept for one layer at a
    time and recomputed in the backward, about a third more compute for much less memory."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    # Set on the layers directly: transformers' gradient_checkpointing_enable also hooks the inputs
    # to require grad, which the depth decoder's in-place first position does not allow.
    for stack in (csm.backbone_model, csm.depth_decoder):
        for layer in stack.modules():
            if isinstance(layer, GradientCheckpointingLayer):
                layer.gradient_checkpointing = True
                layer._gradient_checkpointing_func = _checkpoint


def _checkpoint(*args, **kwargs):
    import torch.utils.checkpoint

    return torch.utils.checkpoint.checkpoint(*args, use_reentrant=False, **kwargs)


def make_trainable(bundle, adapter, config):
    """(model to train, names of the trained tensors). LoRA through peft, or every non-codec weight."""
    if config.full:
        model = bundle.model
        for name, p in model.named_parameters():
            p.requires_grad_(not name.startswith("codec_model."))
    else:
        from voxlora.peft_bridge import apply_adapter

        model, _ = apply_adapter(bundle.model, adapter, trainable=True)
    if getattr(config, "grad_checkpointing", False):
        checkpoint_layers(bundle.model)
    names = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.float32)  # master weights in fp32 whatever the compute dtype
            names.append(name)
    return model, names


class TorchTraining(CsmData):
    """A CSM loaded with transformers for training (``--device``; ``--dtype`` via autocast)."""

    name = "torch"

    def __init__(self, config, source):
        import logging

        from voxlora.models.csm import load_csm

        self.device = pick_device(config.device)
        self.config = config
        if not logging.getLogger("voxlora").isEnabledFor(logging.DEBUG):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # transformers' "Loading weights" bar: not ours to show
        self.data = load_csm(
            source,
            dtype="fp32" if config.full else config.dtype,
            device=self.device,
            codec=config.codec,
            attention=config.attention,
        )
        self.frame_rate = float(self.data.codec.config.frame_rate)
        self.max_positions = int(self.data.config.max_position_embeddings)

    def stepper(self, model, config, *, loss=None) -> TorchStepper:
        return TorchStepper(model, config, loss=loss, device=self.device)

    def release_codec(self) -> None:
        # Mimi is ~80M parameters the loss never calls once the codes are cached. --full keeps it:
        # the saved model is the whole CSM, codec included.
        if not self.config.full:
            self.data.model.codec_model = None
            gc.collect()

    def make_trainable(self, adapter):
        model, names = make_trainable(self.data, adapter, self.config)
        if self.config.compile:  # the loss calls the compiled stacks (backends/torch/compile.py)
            from voxlora.backends.torch.compile import Compiled, attach

            csm = self.data.model
            attach(csm, Compiled({"backbone": csm.backbone_model, "decoder": csm.depth_decoder.model}))
        return model, names

    def build_store(self, clips):
        store = super().build_store(clips)
        if self.config.compile:  # batches padded to a few shapes: a handful of compiles
            from voxlora.families.csm.batches import Buckets

            rows = None if self.config.max_batch_frames else self.config.batch_size
            store.buckets = Buckets(self.max_positions, rows=rows, budget=self.config.max_batch_frames)
        return store

    @property
    def where(self) -> str:
        return self.device

    def trained_params(self, model) -> int:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def adapter_from_model(self, model, like):
        from voxlora.peft_bridge import adapter_from_model

        return adapter_from_model(model, like=like)

    def save_model(self, model, folder) -> None:
        model.save_pretrained(folder)

    rng_tensors = staticmethod(rng_tensors)
    restore_rng = staticmethod(restore_rng)
