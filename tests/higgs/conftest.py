"""A tiny Higgs Audio v2 (transformers' classes, save_pretrained) and its Boson-layout copy, per session."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_higgs_hf(tmp_path_factory):
    from tests.higgs.tiny import write_tiny_higgs_hf

    return write_tiny_higgs_hf(tmp_path_factory.mktemp("higgs") / "tiny-higgs")


@pytest.fixture(scope="session")
def tiny_higgs_boson(tiny_higgs_hf, tmp_path_factory):
    from tests.higgs.tiny import write_tiny_higgs_original

    return write_tiny_higgs_original(tiny_higgs_hf, tmp_path_factory.mktemp("higgs") / "tiny-higgs-boson")


@pytest.fixture(scope="session")
def higgs_processor(tiny_higgs_hf):
    from voxlora.families.higgs_audio_v2.load import load_processor

    return load_processor(tiny_higgs_hf)


@pytest.fixture(scope="session")
def clips():
    """Three short noise-like clips at 24 kHz (0.5, 0.9, 0.7 s)."""
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(int(24000 * s)) * 0.1).astype(np.float32) for s in (0.5, 0.9, 0.7)]
