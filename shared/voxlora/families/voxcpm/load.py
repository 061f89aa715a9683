"""Load a VoxCPM (0.5B, 1.5 or 2) from a local folder or hub id, with VoxCPM's own model classes.

What a VoxCPM folder holds: config.json (``"architecture": "voxcpm"`` or ``"voxcpm2"``), the
weights (model.safetensors, or pytorch_model.bin as VoxCPM-0.5B ships them), the AudioVAE
(audiovae.safetensors or audiovae.pth) and a tokenizer. Unlike ``VoxCPMModel.from_local`` this
loader checks every weight (a missing or unexpected tensor is an error, not silently skipped),
runs in float32 on CPU (bfloat16 where asked), and reads ``.bin`` / ``.pth`` only with
``torch.load(weights_only=True)``: plain tensors, nothing else is ever unpickled.

    >>> model = load("openbmb/VoxCPM1.5", lora=lora_config)        # doctest: +SKIP
"""

import json
from pathlib import Path

import torch

from voxlora.errors import VoxloraError
from voxlora.families.voxcpm.runtime import classes, quiet

WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # in the order VoxCPM prefers them
VAE_WEIGHTS = ("audiovae.safetensors", "audiovae.pth")


def read_tensors(path) -> dict[str, torch.Tensor]:
    """A safetensors file, or a torch pickle of tensors only (`voxlora.tensor_pickle`)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:
            raise VoxloraError(f"{path}: not a readable safetensors file ({e})") from None
    from voxlora.tensor_pickle import read

    return read(path)


def first_present(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise VoxloraError(f"{path}: not a readable VoxCPM config ({e})") from None


def load(model, lora=None, device: str = "cpu", dtype: str = "float32"):
    """The VoxCPM model in ``model`` (folder or hub id), its AudioVAE as ``.audio_vae`` (float32).

    ``lora``: a VoxCPM ``LoRAConfig`` (its own LoRA layers are inserted, B at zero, A as its init).
    Every weight but the LoRA ones must be in the files, and nothing else may be.
    """
    from transformers import LlamaTokenizerFast

    from voxlora.modelfolder import model_dir

    folder = model_dir(model)
    raw = read_config(folder)
    k = classes(raw.get("architecture", "voxcpm"))
    try:
        config = k.config.model_validate(raw)
    except ValueError as e:
        raise VoxloraError(
            f"{folder / 'config.json'}: not a {k.arch} config ({str(e).splitlines()[0]})"
        ) from None
    config.device, config.dtype = device, dtype
    weights, vae_weights = first_present(folder, WEIGHTS), first_present(folder, VAE_WEIGHTS)
    if weights is None:
        raise VoxloraError(f"{folder}: no {' or '.join(WEIGHTS)}")
    if vae_weights is None:
        raise VoxloraError(f"{folder}: no AudioVAE weights ({' or '.join(VAE_WEIGHTS)})")
    vae_state, state = read_tensors(vae_weights), read_tensors(weights)
    tokenizer = LlamaTokenizerFast.from_pretrained(folder)
    with quiet():
        vae = k.vae(config.audio_vae_config) if config.audio_vae_config else k.vae()
        net = k.model(config, tokenizer, vae, lora, device=device)
    state |= {f"audio_vae.{n}": t for n, t in vae_state.items()}
    result = net.load_state_dict(state, strict=False)
    missing = [n for n in result.missing_keys if "lora_" not in n]
    if missing or result.unexpected_keys:
        parts = [f"missing {', '.join(missing[:5])}" if missing else "", ""]
        if result.unexpected_keys:
            parts[1] = f"unexpected {', '.join(result.unexpected_keys[:5])}"
        raise VoxloraError(f"{weights}: does not fit {k.model.__name__}: {'; '.join(p for p in parts if p)}")
    net = net.to(device=device, dtype=getattr(torch, dtype))
    net.audio_vae = net.audio_vae.to(torch.float32)
    net.source, net.arch = folder, k.arch
    return net
