"""Tiny VoxCPM models made by VoxCPM's own code (session-wide, read-only)."""

import importlib.machinery
import sys
import types

import pytest

try:  # TODO(higgs): replaced by voxlora.torchaudio_compat once branch higgs lands
    import torchaudio  # noqa: F401
except Exception:
    import transformers  # noqa: F401  (its availability checks run before the stand-in exists)

    _stub = types.ModuleType("torchaudio")
    _stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    sys.modules["torchaudio"] = _stub


@pytest.fixture(scope="session")
def tiny_v1(tmp_path_factory):
    from tests.voxcpm.tiny import write_tiny_voxcpm

    return write_tiny_voxcpm(tmp_path_factory.mktemp("voxcpm") / "v1")


@pytest.fixture(scope="session")
def tiny_v2(tmp_path_factory):
    from tests.voxcpm.tiny import write_tiny_voxcpm

    return write_tiny_voxcpm(tmp_path_factory.mktemp("voxcpm") / "v2", arch="voxcpm2", vae="safetensors")
