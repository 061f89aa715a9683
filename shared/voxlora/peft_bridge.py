"""Between voxlora's `Adapter` and a loaded torch CSM: make a fresh adapter, apply one through peft,
and take the trained tensors back out.

    adapter = new_adapter_for("sesame/csm-1b", LoraSettings(), seed=0)   # A random, B zero
    peft_model, n = apply_adapter(bundle.model, adapter, trainable=True) # LoRA layers in place
    ... train ...
    write_adapter(adapter_from_model(peft_model, like=adapter), "runs/a1")

`apply_adapter` checks every adapter tensor against the model before peft sees it and checks that
peft wrapped exactly the adapter's modules afterwards: an adapter that does not fit is refused with
the list of keys, never half applied (peft itself would skip unknown keys with a warning).
"""

import dataclasses
import logging
import os
import warnings

import torch

from voxlora import targets
from voxlora.adapter import PREFIX, Adapter, fresh_adapter, parse_peft_tensors, read_adapter, require_fits
from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora")


def shapes_of(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Every tensor name -> shape of a loaded model (tied tensors under each of their names)."""
    return {name: tuple(t.shape) for name, t in model.state_dict(keep_vars=True).items()}


def new_adapter_for(base, settings, seed: int = 0, base_model: str | None = None) -> Adapter:
    """A fresh adapter for ``base`` (a loaded model, or a model folder / hub id read by headers only).

    LoRA pairs come from `voxlora.adapter.fresh_adapter` (A random from ``seed``, B zero, so the
    model is unchanged); with ``settings.train_embeddings`` the embeddings start as copies of the base's.
    ``base_model`` is recorded for later loading (default: ``base`` itself when it is a name).
    """
    if isinstance(base, torch.nn.Module):
        shapes, tensor = shapes_of(base), base.state_dict().__getitem__
        fingerprint_of = base_model
    else:
        from voxlora.modelfolder import base_name, model_dir

        folder = model_dir(base)
        shapes, tensor = targets.base_shapes(folder), _checkpoint_reader(folder)
        fingerprint_of = folder
        if base_model is None:
            base_model = base_name(base)
    selection = targets.select(shapes, settings)
    trained = {name: tensor(name).detach().to(torch.float32).clone() for name in selection.trained}
    fingerprint, identity = fingerprints(fingerprint_of)
    return fresh_adapter(selection.lora, trained, settings, seed, base_model, fingerprint, "torch", identity)


def fingerprints(model) -> tuple[str | None, tuple[str, str] | None]:
    """(`adapter.base_fingerprint`, `adapter.base_identity`) of a model folder; None where unreadable."""
    if model is None:
        return None, None
    from voxlora.adapter import base_fingerprint, base_identity

    try:
        fingerprint = base_fingerprint(model)
    except VoxloraError:
        return None, None
    try:
        return fingerprint, base_identity(model)
    except VoxloraError:  # a folder of no known family: no layout to record
        return fingerprint, None


def _checkpoint_reader(folder):
    """name -> tensor, read from the folder's safetensors (tied names read from where they are stored),
    or its tensor pickle (`voxlora.tensor_pickle`: VoxCPM-0.5B's pytorch_model.bin)."""
    from safetensors import safe_open

    from voxlora import tensor_pickle
    from voxlora.families.files import layout, tensor_files

    where = {}
    for file in tensor_files(folder):
        if tensor_pickle.is_pickle(file):
            where.update(dict.fromkeys(tensor_pickle.header(file), file))
            continue
        with safe_open(file, framework="pt") as f:
            where.update(dict.fromkeys(f.keys(), file))

    names = {n: n for n in where}
    if (
        layout(folder) == "csm-1b-mlx"
    ):  # transformers' names -> the stored ones (embeddings: rows as they are)
        from voxlora.families.csm.mlx_layout import stored_names

        names = stored_names(where)
        where = {hf: where[n] for hf, n in names.items()}

    def read(name: str) -> torch.Tensor:
        stored = name if name in where else targets.TIED.get(name, name)
        if tensor_pickle.is_pickle(where[stored]):
            return tensor_pickle.read(where[stored])[names[stored]]
        with safe_open(where[stored], framework="pt") as f:
            return f.get_tensor(names[stored])

    return read


def peft_config(adapter: Adapter, trainable: bool = False):
    """The peft ``LoraConfig`` of ``adapter`` (exact module paths, never suffixes)."""
    from peft import LoraConfig

    config = adapter.peft_config()
    return LoraConfig(
        r=config["r"],
        lora_alpha=config["lora_alpha"],
        lora_dropout=config["lora_dropout"],
        use_rslora=config["use_rslora"],
        target_modules=config["target_modules"],
        modules_to_save=config["modules_to_save"],
        init_lora_weights=config["init_lora_weights"],
        inference_mode=not trainable,
    )


def apply_adapter(model: torch.nn.Module, adapter: Adapter, trainable: bool = False):
    """Wrap ``model`` with peft and load ``adapter``'s tensors; returns (peft_model, tensors loaded).

    ``trainable=True`` leaves the LoRA tensors and directly trained embeddings requiring grad (and
    dropout active in train mode); otherwise everything is frozen. ``model`` is modified in place.
    Raises VoxloraError listing every adapter key that does not land on a module of the right shape.
    """
    from peft import get_peft_model, set_peft_model_state_dict
    from peft.tuners.lora import LoraLayer

    require_fits(adapter, shapes_of(model), "adapter")
    with warnings.catch_warnings():
        # CSM ties the backbone's audio embedding to the decoder's; training it breaks the tie on
        # purpose (the decoder keeps the base table, and lora-merge writes both), so peft's warning
        # about tied layers is expected here.
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, peft_config(adapter, trainable))
    base = peft_model.base_model.model
    wrapped = {name for name, m in base.named_modules() if isinstance(m, LoraLayer)}
    if wrapped != set(adapter.lora):
        extra, missing = sorted(wrapped - set(adapter.lora)), sorted(set(adapter.lora) - wrapped)
        raise VoxloraError(
            f"peft wrapped other modules than the adapter names: extra {extra}, missing {missing}"
        )
    state = adapter.peft_state_dict()
    result = set_peft_model_state_dict(peft_model, state)
    unexpected = list(result.unexpected_keys)
    missing = [k for k in result.missing_keys if ".lora_" in k or ".modules_to_save." in k]
    if unexpected or missing:
        raise VoxloraError(
            f"adapter keys peft did not load: {sorted(unexpected)}; left unset: {sorted(missing)}"
        )
    if not trainable:
        peft_model.eval()
    return peft_model, len(state)


def load_adapter_into(model: torch.nn.Module, path: str | os.PathLike, trainable: bool = False):
    """`read_adapter` then `apply_adapter`: any adapter folder voxlora reads, on a loaded model."""
    return apply_adapter(model, read_adapter(path), trainable=trainable)


def adapter_from_model(peft_model, like: Adapter) -> Adapter:
    """The adapter's current tensors taken out of ``peft_model`` (e.g. after training), as an Adapter.

    Settings and meta are copied from ``like`` (the adapter that was applied); tensors are fp32 copies.
    """
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    state = {
        k if k.startswith(PREFIX) else PREFIX + k: v.detach().to("cpu", torch.float32).clone()
        for k, v in state.items()
    }
    pairs, trained = parse_peft_tensors(state, "model")
    return dataclasses.replace(like, lora=pairs, trained=trained, meta=dict(like.meta), format="voxlora")
