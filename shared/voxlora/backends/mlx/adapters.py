"""One MLX CSM serving several adapters in turn: `voxlora.backends.torch.adapter_switch.AdapterSwitch` for MLX.

Each adapter folder is read once (`read_adapter`) and checked against the base's tensor names and
shapes (`require_fits`, one error listing every key that does not fit) before anything changes.
Switching takes the current adapter off (`mlx_lora.remove_adapter`: the plain linears and the base's
tables back, exactly) and puts the next one on:

- direct (default): mlx-lm's LoRA layers (`mlx_lora.apply_adapter`);
- merged (``merge=True``): the same layers fused into their linears (``LoRALinear.fuse``), the plain
  linears they replaced kept aside and put back on the next switch, so the base is restored exactly.
"""

import logging
from pathlib import Path

from mlx.utils import tree_unflatten

from voxlora.adapter import Adapter, read_adapter, require_fits
from voxlora.backends.mlx import lora as mlx_lora
from voxlora.backends.mlx.csm import hf_shapes

log = logging.getLogger("voxlora")
BASE = None  # the adapter key meaning "no adapter"


class MlxAdapterSwitch:
    """Apply any of several adapters to an mlx-audio SesameModel (modified in place), one at a time."""

    def __init__(self, model, merge: bool = False):
        self.model = model
        self.merge = merge
        self.shapes = hf_shapes(model)  # transformers' names: adapters are checked as on torch
        self.loaded: dict[str, Adapter] = {}  # resolved adapter path -> its tensors
        self.active: str | None = BASE
        self._plain: dict = {}  # merge mode: module path -> the plain linear a fused one replaced

    def use(self, path: str | None) -> None:
        """Make ``path`` (an adapter folder) the active adapter, or the plain base for None."""
        key = BASE if path is None else str(Path(path).resolve())
        if key == self.active:
            return
        if key is not BASE and key not in self.loaded:
            self._load(path, key)
        self._remove()
        if key is not BASE:
            self._apply(self.loaded[key])
        self.active = key

    def _load(self, path, key: str) -> None:
        adapter = read_adapter(path)
        require_fits(adapter, self.shapes, str(path))
        self.loaded[key] = adapter
        log.info(
            f"{path}: adapter loaded, {2 * len(adapter.lora) + len(adapter.trained)} tensors applied "
            f"({len(adapter.lora)} LoRA modules, {len(adapter.trained)} trained tensors; "
            f"{'merged' if self.merge else 'direct'})"
        )

    def _apply(self, adapter: Adapter) -> None:
        mlx_lora.apply_adapter(self.model, adapter)
        if self.merge:
            layers = mlx_lora.lora_layers(self.model)
            self._plain = {name: layer.linear for name, layer in layers.items()}
            self.model.update_modules(tree_unflatten([(name, m.fuse()) for name, m in layers.items()]))

    def _remove(self) -> None:
        if self._plain:
            self.model.update_modules(tree_unflatten(list(self._plain.items())))
            self._plain = {}
        mlx_lora.remove_adapter(self.model)  # LoRA layers (direct) and trained tables (both modes)
