"""VoxCPM's training pieces: its LoRA from voxlora's options, what trains, its loss, what is saved.

voxlora's options map to VoxCPM's own ``LoRAConfig`` (the switches of its YAML ``lora:`` block)::

    --component lm | dit | all       enable_lm (base_lm + residual_lm) / enable_dit (the DiT) / both
    --targets attn[,mlp][,proj]      target_modules_lm/_dit = q,k,v,o (+ gate,up,down); proj: enable_proj
    -r, --alpha                      r, alpha (scaling alpha / r, as peft)

The loss is VoxCPM's own training forward (``VoxCPMModel.forward`` returns ``loss/diff`` and
``loss/stop``), summed with its trainer's default lambdas (1, 1). Its diffusion time, noise and
classifier-free-guidance drop are drawn from torch's global generator; `losses` seeds it per step so
a step is reproducible (and resumable bitwise).
"""

import json
from pathlib import Path

import torch

from voxlora.errors import VoxloraError

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]
COMPONENTS = {"lm": (True, False), "dit": (False, True), "all": (True, True)}
LAMBDAS = {"loss/diff": 1.0, "loss/stop": 1.0}  # VoxCPM's trainer's defaults
LORA_WEIGHTS, LORA_CONFIG = "lora_weights.safetensors", "lora_config.json"
SIDE_FILES = ("config.json", "audiovae.pth", "audiovae.safetensors", "tokenizer.json",
              "special_tokens_map.json", "tokenizer_config.json")  # fmt: skip


def lora_config(k, component: str = "all", targets=("attn",), r: int = 8, alpha: float = 16, dropout=0.0):
    """VoxCPM's ``LoRAConfig`` (class ``k.lora_config``) for voxlora's LoRA options."""
    if component not in COMPONENTS:
        raise VoxloraError(f"--component {component!r}: VoxCPM has lm, dit or all")
    items = [t.strip() for spec in targets for t in str(spec).split(",") if t.strip()]
    names, proj = [], False
    for item in items:
        if item == "attn":
            names += ATTN
        elif item == "mlp":
            names += MLP
        elif item == "proj":
            proj = True
        elif item in ATTN + MLP:
            names.append(item)
        else:
            raise VoxloraError(f"--targets {item!r}: VoxCPM's LoRA takes attn, mlp, proj or a linear's name")
    names = list(dict.fromkeys(names))
    enable_lm, enable_dit = COMPONENTS[component]
    if not names:
        enable_lm = enable_dit = False
    if not (enable_lm or enable_dit or proj):
        raise VoxloraError("--targets: nothing to train (name attn, mlp or proj)")
    fields = k.lora_config().model_dump()
    fields.update(enable_lm=enable_lm, enable_dit=enable_dit, enable_proj=proj, r=r, dropout=dropout)
    fields.update(alpha=int(alpha) if float(alpha).is_integer() else alpha)
    if names:
        fields.update(target_modules_lm=names, target_modules_dit=names)
    return k.lora_config(**fields)


def make_trainable(model, full: bool = False) -> list[str]:
    """Freeze all but the LoRA tensors (``full``: all but the AudioVAE's); the names that train."""
    names = []
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith("audio_vae.") and (full or "lora_" in name)
        if p.requires_grad:
            names.append(name)
    return names


def losses(model, batch: dict, seed: int | None = None, progress: float = 0.0) -> tuple[torch.Tensor, dict]:
    """(total loss, {"loss/diff", "loss/stop"}) of VoxCPM's training forward on ``batch`` (`batch.collate`)."""
    with torch.random.fork_rng(devices=[]) if seed is not None else _nothing():
        if seed is not None:
            torch.manual_seed(seed)
        out = model(
            batch["text_tokens"],
            batch["text_mask"],
            batch["audio_feats"],
            batch["audio_mask"],
            batch["loss_mask"],
            batch["position_ids"],
            batch["labels"],
            progress=progress,
        )
    parts = {k: v for k, v in out.items() if k.startswith("loss/")}
    total = sum(v * LAMBDAS.get(k, 1.0) for k, v in parts.items())
    return total, parts


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def lora_state(model) -> dict[str, torch.Tensor]:
    """VoxCPM's LoRA tensors as its trainer saves them (``<module>.lora_A`` / ``.lora_B``)."""
    return {n: t.detach().to("cpu").contiguous() for n, t in model.state_dict().items() if "lora_" in n}


def save_adapter(model, out, base_model: str, sample_rate: int | None = None) -> Path:
    """``out``: the adapter in voxlora's peft layout, and VoxCPM's own lora_weights.safetensors +
    lora_config.json beside it (``VoxCPMModel.load_lora_weights`` loads it)."""
    from safetensors.torch import save

    from voxlora.adapter import Adapter, write_adapter
    from voxlora.atomic import atomic_write_bytes, atomic_write_text

    cfg = model.lora_config
    state = lora_state(model)
    pairs = {}
    for name, t in state.items():
        module, _, leaf = name.rpartition(".")
        pairs.setdefault(module, {})[leaf] = t
    adapter = Adapter(
        r=cfg.r,
        alpha=float(cfg.alpha),
        lora={m: (ab["lora_A"], ab["lora_B"]) for m, ab in pairs.items()},
        dropout=cfg.dropout,
        base_model=base_model,
        meta={"family": "voxcpm", "voxcpm": {"lora_config": cfg.model_dump(), "sample_rate": sample_rate}},
    )
    out = write_adapter(adapter, out)
    atomic_write_bytes(out / LORA_WEIGHTS, save(state))
    info = {"base_model": base_model, "lora_config": cfg.model_dump()}
    atomic_write_text(out / LORA_CONFIG, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return out


def save_full(model, out, source) -> Path:
    """``out``: a model folder ``VoxCPMModel.from_local`` loads (every weight but the AudioVAE's in
    model.safetensors, VoxCPM's config, AudioVAE and tokenizer files copied from ``source``)."""
    import shutil

    from safetensors.torch import save_file

    from voxlora.atomic import atomic_dir

    state = {
        n: t.detach().to("cpu").contiguous()
        for n, t in model.state_dict().items()
        if not n.startswith("audio_vae.") and "lora_" not in n
    }
    source = Path(source)
    with atomic_dir(Path(out)) as tmp:
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        for name in SIDE_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
    return Path(out)
