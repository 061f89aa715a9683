"""One loaded base model serving several adapters in turn (synth's batch mode).

Each adapter folder is read once (`read_adapter`) and checked against the base's tensor names and
shapes before anything is applied: an adapter with a key that would land nowhere, or on a tensor of
another shape, is refused with the list of such keys (`require_fits`), never partly applied.

Two ways to apply, picked once per run:

- direct (default): peft's LoRA layers, one named adapter each in the same `PeftModel`;
  ``set_adapter`` picks one, ``disable_adapter_layers`` gives the plain base.
- merged (``merge=True``): the adapter's tensors merged into the weights in memory, the way
  lora-merge writes them (`lora.merged_tensor`). The merged tensors replace the base's parameters
  on their modules, and switching puts the original parameters back, so the base is restored
  exactly (no ``W + d - d`` rounding) and a tied tensor (CSM's audio embedding) is untied, as
  lora-merge does.

Both give the same audio codes for the same seed (in fp32), which tests check.
"""

import logging
import warnings
from pathlib import Path

import torch

from voxlora import lora
from voxlora.adapter import Adapter, read_adapter, require_fits
from voxlora.errors import VoxloraError
from voxlora.peft_bridge import peft_config, shapes_of

log = logging.getLogger("voxlora")
BASE = None  # the adapter key meaning "no adapter"


class AdapterSwitch:
    """Apply any of several adapters to ``model`` (modified in place), one at a time: here adapter a1,
    then the plain base.

    >>> switch = AdapterSwitch(bundle.model)          # doctest: +SKIP
    >>> switch.use("runs/a1"); switch.use(None)       # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module, merge: bool = False):
        self.model = model
        self.merge = merge
        self.shapes = shapes_of(model)  # taken before peft renames anything
        self.names: dict[str, str] = {}  # resolved adapter path -> peft adapter name
        self.merged: dict[str, Adapter] = {}  # merge mode: resolved path -> adapter tensors
        self.active: str | None = BASE
        self.peft = None  # the PeftModel, once a first adapter is applied directly
        self._saved: dict[str, torch.nn.Parameter] = {}  # merge mode: tensor name -> original parameter

    def use(self, path: str | None) -> None:
        """Make ``path`` (an adapter folder) the active adapter, or the plain base for None."""
        key = BASE if path is None else str(Path(path).resolve())
        if key == self.active:
            return
        if key is not BASE and key not in self.names and key not in self.merged:
            self._load(path, key)
        if self.merge:
            self._restore()
            if key is not BASE:
                self._merge_in(self.merged[key])
        elif self.peft is not None:
            if key is BASE:
                self.peft.base_model.disable_adapter_layers()
            else:
                self.peft.base_model.enable_adapter_layers()
                self.peft.set_adapter(self.names[key])
        self.active = key

    def _load(self, path, key: str) -> None:
        adapter = read_adapter(path)
        require_fits(adapter, self.shapes, str(path))
        n_tensors = 2 * len(adapter.lora) + len(adapter.trained)
        if self.merge:
            device = next(self.model.parameters()).device
            adapter.lora = {m: (A.to(device), B.to(device)) for m, (A, B) in adapter.lora.items()}
            adapter.trained = {n: t.to(device) for n, t in adapter.trained.items()}
            self.merged[key] = adapter
        else:
            name = f"adapter{len(self.names)}"  # peft names must not contain dots
            self._add_to_peft(adapter, name)
            self.names[key] = name
        log.info(
            f"{path}: adapter loaded, {n_tensors} tensors applied "
            f"({len(adapter.lora)} LoRA modules, {len(adapter.trained)} trained tensors; "
            f"{'merged' if self.merge else 'direct'})"
        )

    def _add_to_peft(self, adapter: Adapter, name: str) -> None:
        """Add ``adapter`` to the PeftModel under ``name`` and check peft loaded every tensor."""
        from peft import PeftModel, set_peft_model_state_dict

        config = peft_config(adapter)
        config.lora_dropout = 0.0  # inference: dropout never applies
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")  # see peft_bridge
            warnings.filterwarnings(
                "ignore", message=".*is_gradient_checkpointing.*"
            )  # peft vs transformers 5
            if self.peft is None:
                self.peft = PeftModel(self.model, config, adapter_name=name)
            else:
                self.peft.add_adapter(name, config)
        state = adapter.peft_state_dict()
        result = set_peft_model_state_dict(self.peft, state, adapter_name=name)
        left = [k for k in result.missing_keys if f".{name}." in k or k.endswith(f".{name}")]
        if result.unexpected_keys or left:
            raise VoxloraError(
                f"adapter keys peft did not load: {sorted(result.unexpected_keys)}; left unset: {sorted(left)}"
            )
        self.model.eval()  # peft's new layers (dropout) start in train mode

    def _merge_in(self, adapter: Adapter) -> None:
        """Replace each parameter the adapter touches by its merged copy (originals kept aside)."""
        touched = {f"{m}.weight" for m in adapter.lora} | set(adapter.trained)
        with torch.no_grad():
            for name in sorted(touched):
                module_path, _, leaf = name.rpartition(".")
                module = self.model.get_submodule(module_path)
                original = getattr(module, leaf)
                merged = lora.merged_tensor(name, original.detach(), adapter)
                self._saved[name] = original
                setattr(module, leaf, torch.nn.Parameter(merged, requires_grad=False))

    def _restore(self) -> None:
        for name, original in self._saved.items():
            module_path, _, leaf = name.rpartition(".")
            setattr(self.model.get_submodule(module_path), leaf, original)
        self._saved.clear()
