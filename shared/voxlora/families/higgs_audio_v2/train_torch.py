"""Higgs Audio v2 training on torch: transformers' model, peft's LoRA, the shared optimizer step.

`HiggsTraining` is the family's `voxlora.families.base.TrainModel`. The base loads in the compute
dtype (``--dtype bf16``: a 3B model's weights take 6 GB, not 12) with every tensor checked
(`load.load_model`); trained tensors (LoRA, or everything with ``--full``) are fp32 master weights;
the audio tokenizer is never trained and leaves memory once every clip is coded.
``--grad-checkpointing`` (on by default for models over 2B parameters) recomputes each decoder
layer's activations in the backward pass. The loss is `loss.higgs_loss`: audio sums in
``backbone``, text sums in ``decoder`` (0 without a text head).
"""

import gc
import logging
import shutil
from functools import cached_property
from pathlib import Path

import torch

from voxlora.backends.torch.codec import codec_identity
from voxlora.backends.torch.rng import restore_rng, rng_tensors
from voxlora.backends.torch.train import TorchStepper, pick_device
from voxlora.errors import VoxloraError
from voxlora.families.higgs_audio_v2 import data
from voxlora.families.higgs_audio_v2.codec import SAMPLE_RATE
from voxlora.families.higgs_audio_v2.load import load_model, load_processor, quantization
from voxlora.families.higgs_audio_v2.loss import higgs_loss
from voxlora.modelfolder import torch_dtype

log = logging.getLogger("voxlora")
PROCESSOR_FILES = ("processor_config.json", "chat_template.jinja", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "audio_tokenizer")  # fmt: skip
BIG = 2e9  # parameters above which --grad-checkpointing is on unless asked otherwise


class HiggsTraining:
    name = "torch"

    def __init__(self, config, source):
        self.config, self.source = config, Path(source)
        self.device = pick_device(config.device)
        if not logging.getLogger("voxlora").isEnabledFor(logging.DEBUG):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        quantize = getattr(config, "quantize", None)
        if quantize and config.full:
            raise VoxloraError("--quantize 4bit trains LoRA on a frozen 4-bit base; not with --full")
        quantization(self.device, quantize)  # refused before anything loads
        self.processor = load_processor(source, device=self.device)
        text_head = bool(getattr(config, "text_loss", False))
        dtype = torch_dtype("fp32" if config.full else config.dtype)
        self.model = load_model(
            source, dtype=dtype, use_text_head=text_head, device=self.device, quantize=quantize,
            attention=getattr(config, "attention", "sdpa"),
        )  # fmt: skip
        if quantize:
            from peft import prepare_model_for_kbit_training

            self.model = prepare_model_for_kbit_training(self.model, use_gradient_checkpointing=False)
        tok = self.processor.audio_tokenizer.config
        self.frame_rate = float(SAMPLE_RATE / tok.hop_length)
        self.max_positions = int(self.model.config.max_position_embeddings)
        self.text_head = self.model.text_lm_head is not None
        n = sum(p.numel() for p in self.model.parameters())
        wanted = getattr(config, "grad_checkpointing", None)
        if wanted or (wanted is None and n > BIG):
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            self.model.config.use_cache = False
            log.info("gradient checkpointing on (%.1fB parameters)", n / 1e9)

    @property
    def where(self) -> str:
        return self.device

    @cached_property
    def codec_identity(self) -> str:
        return "higgs-audio-v2-tokenizer:" + codec_identity(self.processor.audio_tokenizer)

    def prepare_clips(self, records, cache, default_speaker: int = 0, progress=None):
        reference = getattr(self.config, "reference", "auto")
        return data.prepare_clips(records, self.processor, cache, reference, progress)

    def check_clip(self, clip, max_batch_frames: int | None = None) -> None:
        data.check_clip(clip, self.max_positions, max_batch_frames)

    def build_store(self, clips):
        return data.HiggsStore(clips, self.processor, self.text_head, self.frame_rate)

    def release_codec(self) -> None:
        self.processor.audio_tokenizer.to("meta")  # codes are cached: its weights leave memory
        gc.collect()

    def make_trainable(self, adapter):
        model = self.model
        if self.config.full:
            for p in model.parameters():
                p.requires_grad_(True)
        else:
            from voxlora.peft_bridge import apply_adapter

            model, _ = apply_adapter(model, adapter, trainable=True)
            if model.base_model.model.is_activation_checkpointing:
                model.base_model.model.enable_input_require_grads()
        names = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.float32)
                names.append(name)
        return model, names

    def stepper(self, model, config, *, loss=None) -> TorchStepper:
        return TorchStepper(model, config, loss=loss or self.loss, device=self.device)

    @staticmethod
    def loss(model, batch):
        """(audio sum, text sum) of a `data.HiggsTrainBatch` (DDP's stepper takes it from here too)."""
        return higgs_loss(model, batch.inputs)

    def trained_params(self, model) -> int:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def adapter_from_model(self, model, like):
        from voxlora.peft_bridge import adapter_from_model

        return adapter_from_model(model, like=like)

    def save_model(self, model, folder) -> None:
        """--full: the model (transformers' layout) and the base's processor files beside it, so
        ``synth --model FOLDER`` and ``HiggsAudioV2ForConditionalGeneration.from_pretrained`` both load it."""
        model.save_pretrained(folder)
        for name in PROCESSOR_FILES:
            src = self.source / name
            if src.is_dir():
                shutil.copytree(src, Path(folder) / name, dirs_exist_ok=True)
            elif src.is_file():
                shutil.copyfile(src, Path(folder) / name)

    rng_tensors = staticmethod(rng_tensors)
    restore_rng = staticmethod(restore_rng)
