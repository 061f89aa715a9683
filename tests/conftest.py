"""Fixtures shared by every test folder. Nothing is downloaded: models are made by code."""

import os

import pytest

# Tests never touch the network: a hub lookup must fail at once, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models run ~8x faster on one thread than on two contended ones (2-core CI machines)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_csm(tmp_path_factory):
    """A tiny CSM written in the layout of sesame/csm-1b (seed 0); shared by the whole session.

    Treat it as read-only; a test that must modify a model copies it or writes its own.
    """
    from voxlora.models.tiny import write_tiny_csm

    return write_tiny_csm(tmp_path_factory.mktemp("models") / "tiny-csm", seed=0)


@pytest.fixture(scope="session")
def other_tiny_csm(tmp_path_factory):
    """A second tiny CSM of the same shapes but other weights (seed 1): 'a different base'."""
    from voxlora.models.tiny import write_tiny_csm

    return write_tiny_csm(tmp_path_factory.mktemp("models") / "tiny-csm-other", seed=1)
