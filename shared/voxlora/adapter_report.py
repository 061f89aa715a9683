"""What `lora-inspect` reports about an adapter: settings, targets, size, update norms, fit to a base.

Everything is computed from the adapter file and, when a base is given, the base's safetensors
headers; no model is loaded. The update norm ``|scaling * B @ A|_F`` of each module says where
training moved the model most (zero everywhere for a fresh adapter, as B starts at zero).

Targets and layers are described in the model family's terms (`voxlora.families`): ``--family``,
else the family the adapter records, else the base's config.json, else the one its module names fit.
"""

from pathlib import Path

from voxlora import families, lora, targets
from voxlora.adapter import Adapter, check_against_base, fingerprint, read_adapter, with_base_names
from voxlora.adapter_base import other_layout_same_model
from voxlora.errors import VoxloraError


def family_of(adapter: Adapter, model=None, name: str | None = None) -> families.Family:
    """The family to describe ``adapter`` in (see the module docstring for the order)."""
    recorded = adapter.meta.get("family") or (adapter.meta.get("created_with", {}).get("settings") or {}).get(
        "family"
    )
    if name or recorded:
        return families.get(name or recorded)
    if model is not None:
        from voxlora.modelfolder import model_dir

        try:
            return families.resolve(model_dir(model))
        except VoxloraError:
            pass  # not a family's config: go by the names
    return families.guess(list(adapter.lora) + list(adapter.trained))


def report(path, model=None, family: str | None = None) -> dict:
    """A JSON-ready description of the adapter at ``path``; with ``model``, its fit to that base.

    ``problems`` lists every adapter key that would be skipped or mismatched on ``model`` (empty:
    it fits). Without ``model``, the adapter's recorded base is used for the parameter share when
    it is a local folder, and nothing is checked.
    """
    from voxlora.families.files import layout, tensor_shapes

    adapter = read_adapter(path)
    kind = family_of(adapter, model, family)
    described = targets.describe(adapter.lora, kind)
    params = adapter.num_params()
    out = {
        "adapter": str(path),
        "format": adapter.format,
        "family": kind.name,
        "base_model": adapter.base_model,
        "r": adapter.r,
        "alpha": adapter.alpha,
        "scaling": adapter.scaling,
        "rslora": adapter.rslora,
        "dropout": adapter.dropout,
        "targets": described["targets"],
        "layers": described["layers"],
        "other_modules": described["other"],
        "modules": len(adapter.lora),
        "trained": sorted(adapter.trained),
        "params": params,
        "base_params": None,
        "share": None,
        "fingerprint": adapter.meta.get("base_fingerprint"),
    }
    base = model
    if base is None and adapter.base_model and Path(adapter.base_model).is_dir():
        base = adapter.base_model
    if base is not None:
        try:
            stored = tensor_shapes(base)
        except VoxloraError:
            if model is not None:
                raise
            stored = None  # the recorded base moved or is incomplete: report without the share
        if stored is not None:
            out["base_params"] = targets.base_params(targets.with_tied(stored), kind)
            out["share"] = round(params / out["base_params"], 6) if out["base_params"] else None
            if model is not None:
                out["model"] = str(model)
                shapes = targets.with_tied(stored)
                out["problems"] = check_against_base(with_base_names(adapter, shapes, kind), shapes)
                recorded = adapter.meta.get("base_fingerprint")
                out["layout"] = layout(base)
                identity = (
                    out["layout"],
                    fingerprint({n: s for n, s in stored.items() if not kind.is_codec(n)}),
                )
                same = recorded == fingerprint(stored) or other_layout_same_model(adapter, identity)
                out["fingerprint_match"] = None if recorded is None else same
    norms = [
        {"module": m, "norm": lora.delta_norm(A, B, adapter.scaling)}
        for m, (A, B) in sorted(adapter.lora.items(), key=lambda kv: kind.module_order(kv[0]))
    ]
    out["norms"] = sorted(norms, key=lambda n: -n["norm"])
    return out
