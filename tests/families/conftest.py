"""Tiny Higgs Audio v2 and VoxCPM checkpoints in their real layouts, made by code (read-only)."""

import pytest


@pytest.fixture(scope="session")
def tiny_higgs(tmp_path_factory):
    """transformers' layout (model_type higgs_audio_v2)."""
    from tests.fixtures.tiny_families import write_tiny_higgs

    return write_tiny_higgs(tmp_path_factory.mktemp("models") / "tiny-higgs")


@pytest.fixture(scope="session")
def tiny_higgs_original(tmp_path_factory):
    """boson_multimodal's original layout (model_type higgs_audio, no model. prefix, audio tower)."""
    from tests.fixtures.tiny_families import write_tiny_higgs

    return write_tiny_higgs(
        tmp_path_factory.mktemp("models") / "tiny-higgs-orig", seed=1, original_layout=True
    )


@pytest.fixture(scope="session")
def tiny_voxcpm(tmp_path_factory):
    from tests.fixtures.tiny_families import write_tiny_voxcpm

    return write_tiny_voxcpm(tmp_path_factory.mktemp("models") / "tiny-voxcpm")
