"""VoxCPM's training pieces: its own LoRA config from voxlora's options, and its loss on a batch.

voxlora's options map to VoxCPM's own ``LoRAConfig`` (the switches of its YAML ``lora:`` block)::

    --component lm | dit | all       enable_lm (base_lm + residual_lm) / enable_dit (the DiT) / both
    --targets attn[,mlp][,proj]      target_modules_lm/_dit = q,k,v,o (+ gate,up,down); proj: enable_proj
    -r, --alpha                      r, alpha (scaling alpha / r, as peft)

The loss is VoxCPM's own training forward (``VoxCPMModel.forward`` returns ``loss/diff`` and
``loss/stop``), summed with its trainer's default lambdas (1, 1). Its diffusion time, noise and
classifier-free-guidance drop are drawn per clip (`draws`: from the run's seed, the epoch and the
clip alone), so a clip draws the same in any micro-batch on any process and a resumed run draws what
the uninterrupted one drew; LoRA dropout draws from torch's generator, which checkpoints keep.
"""

import contextlib

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


def losses(model, batch: dict, seeds=None, progress: float = 0.0, lengths=None) -> tuple[torch.Tensor, dict]:
    """(total loss, {"loss/diff", "loss/stop"}) of VoxCPM's training forward on ``batch`` (`batch.collate`).

    ``seeds``: one per clip, its diffusion draws (`draws.per_clip`; ``lengths``: its clips' packed
    lengths when known, else read off the batch); None: torch's global generator.
    """
    from voxlora.families.voxcpm import draws

    with draws.per_clip(seeds, batch, model, lengths) if seeds is not None else contextlib.nullcontext():
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
