"""Tiny VoxCPM models made by VoxCPM's own code (session-wide, read-only)."""

import pytest


@pytest.fixture(scope="session")
def tiny_v1(tmp_path_factory):
    from tests.voxcpm.tiny import write_tiny_voxcpm

    return write_tiny_voxcpm(tmp_path_factory.mktemp("voxcpm") / "v1")


@pytest.fixture(scope="session")
def tiny_v2(tmp_path_factory):
    from tests.voxcpm.tiny import write_tiny_voxcpm

    return write_tiny_voxcpm(tmp_path_factory.mktemp("voxcpm") / "v2", arch="voxcpm2", vae="safetensors")


@pytest.fixture(scope="session")
def tiny_v15(tmp_path_factory):
    """VoxCPM1.5's layout: 44.1 kHz, patches of 4, model.safetensors + audiovae.pth."""
    from tests.voxcpm.tiny import write_tiny_voxcpm

    return write_tiny_voxcpm(tmp_path_factory.mktemp("voxcpm") / "v15", generation="1.5")
