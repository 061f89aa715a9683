"""VoxCPM training on torch: VoxCPM's own model and loss, peft's LoRA, the shared optimizer step.

The `voxlora.families.base.TrainModel` of VoxCPM. The LoRA modules come from voxlora's options
(`families.voxcpm.FAMILY`'s presets: ``--component lm|dit|all`` = VoxCPM's enable_lm/enable_dit,
``proj`` in ``--targets`` = enable_proj); peft wraps them by exact path, so the forward is VoxCPM's
with the same LoRA arithmetic as its ``LoRALinear`` (``x A^T B^T * alpha / r``). Beside voxlora's
adapter files, the saved adapter carries VoxCPM's own ``lora_weights.safetensors`` and
``lora_config.json`` (`own_lora`), which ``VoxCPMModel.load_lora_weights`` loads.
"""

import json
import logging
from functools import cached_property

import torch

from voxlora.backends.torch.rng import restore_rng, rng_tensors
from voxlora.backends.torch.train import TorchStepper, pick_device
from voxlora.errors import VoxloraError
from voxlora.families.base import check_budget
from voxlora.families.voxcpm import data
from voxlora.families.voxcpm.latents import LatentCache, vae_identity
from voxlora.families.voxcpm.train import LORA_CONFIG, LORA_WEIGHTS, SIDE_FILES

log = logging.getLogger("voxlora")


def own_lora(adapter, k) -> tuple[dict, dict]:
    """(lora_weights tensors, lora_config.json contents) of a peft-layout adapter, in VoxCPM's format.

    The config's switches and target lists are read off the adapter's modules, so a model VoxCPM
    builds from it has every one of them (``load_lora_weights`` skips nothing).
    """
    from voxlora.families.voxcpm import FAMILY

    lm, dit, proj = set(), set(), []
    for module in adapter.lora:
        where = FAMILY.layer_of(module)
        if where is not None and where[0] in ("base_lm", "residual_lm"):
            lm.add(module.rpartition(".")[2])
        elif where is not None and where[0] == "dit":
            dit.add(module.rpartition(".")[2])
        elif FAMILY.head_of(module) is not None:
            proj.append(module)
        else:
            raise VoxloraError(f"{module}: VoxCPM's own LoRA format cannot hold this module")
    fields = k.lora_config().model_dump()
    fields.update(enable_lm=bool(lm), enable_dit=bool(dit), enable_proj=bool(proj), r=adapter.r)
    fields.update(alpha=int(adapter.alpha) if float(adapter.alpha).is_integer() else adapter.alpha)
    fields["dropout"] = adapter.dropout
    if lm:
        fields["target_modules_lm"] = sorted(lm)
    if dit:
        fields["target_modules_dit"] = sorted(dit)
    if proj:
        fields["target_proj_modules"] = proj
    tensors = {}
    for module, (A, B) in adapter.lora.items():
        tensors[f"{module}.lora_A"] = A.detach().to("cpu", torch.float32).contiguous()
        tensors[f"{module}.lora_B"] = B.detach().to("cpu", torch.float32).contiguous()
    return tensors, {"base_model": adapter.base_model, "lora_config": k.lora_config(**fields).model_dump()}


class TorchTraining:
    """A VoxCPM loaded with its own classes for training (float32 weights; ``--dtype`` via autocast)."""

    name = "torch"

    def __init__(self, config, source):
        from voxlora.families.voxcpm.load import load
        from voxlora.families.voxcpm.runtime import classes

        self.config = config
        self.device = pick_device(config.device)
        self.model = load(source, device=self.device, dtype="float32")
        self.classes = classes(self.model.arch)
        self.source = source
        vae = self.model.audio_vae
        self.sample_rate = int(vae.sample_rate)
        self.frame_rate = float(vae.sample_rate) / float(vae.hop_length)  # latent frames a second
        self.max_positions = int(self.model.config.max_length)

    @property
    def where(self) -> str:
        return self.device

    @cached_property
    def codec_identity(self) -> str:
        return vae_identity(self.model.audio_vae, int(self.model.config.patch_size))

    def prepare_clips(self, records, cache, default_speaker: int = 0, progress=None):
        latents = LatentCache(cache.folder, self.codec_identity)
        return data.prepare_clips(records, self.model, latents, progress)

    def check_clip(self, clip, max_batch_frames: int | None = None) -> None:
        if clip.length > self.max_positions:
            raise VoxloraError(
                f"{clip.where}: too long for the model: {clip.length} positions, its max_length is "
                f"{self.max_positions}; split or drop the clip"
            )
        check_budget(clip, max_batch_frames)

    def build_store(self, clips):
        return data.build_store(clips, self.frame_rate)

    def release_codec(self) -> None:
        """The AudioVAE stays: it is small, and --full saves it unchanged beside the model."""

    def make_trainable(self, adapter):
        model = self.model
        if self.config.full:
            for name, p in model.named_parameters():
                p.requires_grad_(not name.startswith("audio_vae."))
        else:
            from voxlora.peft_bridge import apply_adapter

            model, _ = apply_adapter(model, adapter, trainable=True)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        return model, names

    loss = staticmethod(data.voxcpm_loss)  # (diffusion, stop) sums; the DDP stepper takes it too

    def stepper(self, model, config, *, loss=None) -> TorchStepper:
        return TorchStepper(model, config, loss=loss or self.loss, device=self.device)

    def trained_params(self, model) -> int:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def adapter_from_model(self, model, like):
        from voxlora.peft_bridge import adapter_from_model

        adapter = adapter_from_model(model, like=like)
        adapter.meta["voxcpm"] = {"sample_rate": self.sample_rate, "architecture": self.classes.arch}
        return adapter

    def write_adapter_files(self, adapter, folder) -> None:
        """VoxCPM's own lora_weights.safetensors + lora_config.json beside voxlora's adapter files."""
        from safetensors.torch import save_file

        tensors, info = own_lora(adapter, self.classes)
        if adapter.trained:
            log.warning(
                "VoxCPM's own lora_weights.safetensors holds the LoRA only; %s (trained directly) are in "
                "adapter_model.safetensors alone",
                ", ".join(adapter.modules_to_save),
            )
        save_file(tensors, folder / LORA_WEIGHTS)
        (folder / LORA_CONFIG).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")

    def save_model(self, model, folder) -> None:
        """--full: model.safetensors (all but the AudioVAE) + VoxCPM's config, AudioVAE and tokenizer."""
        import shutil
        from pathlib import Path

        from safetensors.torch import save_file

        state = {
            n: t.detach().to("cpu").contiguous()
            for n, t in model.state_dict().items()
            if not n.startswith("audio_vae.")
        }
        save_file(state, Path(folder) / "model.safetensors", metadata={"format": "pt"})
        for name in SIDE_FILES:
            if (Path(self.source) / name).is_file():
                shutil.copyfile(Path(self.source) / name, Path(folder) / name)

    rng_tensors = staticmethod(rng_tensors)
    restore_rng = staticmethod(restore_rng)
