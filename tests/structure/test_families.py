"""The family interface: the registry finds each family's code, and CSM's classes on both backends
provide every member `voxlora.families.base` asks for (so the trainer and synth can rely on it)."""

import importlib.util
import inspect

import pytest
from voxlora.errors import VoxloraError
from voxlora.families import base, registry

HAVE_MLX = bool(importlib.util.find_spec("mlx") and importlib.util.find_spec("mlx_audio"))


def members(protocol) -> set[str]:
    """The names a Protocol declares: its methods and its annotated attributes."""
    own = {n for n, v in vars(protocol).items() if inspect.isfunction(v) or isinstance(v, property)}
    return own | set(getattr(protocol, "__annotations__", {}))


def test_the_registry_finds_csm_by_name_and_by_folder(tiny_csm):
    assert registry.model_family("csm").layout.name == "csm"
    assert registry.for_model(tiny_csm) is registry.model_family("csm")


def test_a_family_without_model_code_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delitem(registry.IMPLEMENTATIONS, "voxcpm")  # as if VoxCPM had no model code
    with pytest.raises(VoxloraError, match=r"^voxcpm: lora-train and synth do not support this family yet"):
        registry.model_family("voxcpm")


@pytest.mark.parametrize(
    "module, name, protocol",
    [
        ("voxlora.families.csm.train_torch", "TorchTraining", base.TrainModel),
        ("voxlora.families.csm.synth_torch", "TorchSynth", base.SpeakModel),
        ("voxlora.families.csm.train_mlx", "MlxTraining", base.TrainModel),
        ("voxlora.families.csm.synth_mlx", "MlxSynth", base.SpeakModel),
        ("voxlora.families.voxcpm.train_torch", "TorchTraining", base.TrainModel),
        ("voxlora.families.voxcpm.synth_torch", "TorchSynth", base.SpeakModel),
    ],
)
def test_csm_fills_the_interface_on_both_backends(module, name, protocol):
    if "mlx" in module and not HAVE_MLX:
        pytest.skip("mlx is not installed")
    cls = getattr(importlib.import_module(module), name)
    source = inspect.getsource(cls) + "".join(inspect.getsource(k) for k in cls.__mro__[1:-1])
    missing = sorted(m for m in members(protocol) if not hasattr(cls, m) and f"self.{m} =" not in source)
    assert missing == []
