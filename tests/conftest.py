"""Fixtures shared by every test folder. Nothing is downloaded: models are made by code."""

import os

import pytest

# Tests never touch the network: a hub lookup must fail at once, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# Every process a test starts runs torch on one thread: on a 2-core machine two threads per process
# spin against each other and the other tests (the GPU benchmark's smoke run took 4x the CPU time).
os.environ.setdefault("OMP_NUM_THREADS", "1")


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
    from voxlora.demo_model import write_tiny_csm

    return write_tiny_csm(tmp_path_factory.mktemp("models") / "tiny-csm", seed=0)


@pytest.fixture(scope="session")
def other_tiny_csm(tmp_path_factory):
    """A second tiny CSM of the same shapes but other weights (seed 1): 'a different base'."""
    from voxlora.demo_model import write_tiny_csm

    return write_tiny_csm(tmp_path_factory.mktemp("models") / "tiny-csm-other", seed=1)


@pytest.fixture
def network_calls(monkeypatch):
    """Every TCP connection attempt and `datasets.load_dataset` call, recorded (and let through).

    Shows a command gave up on the Hub without retrying, where timing it would be flaky.
    """
    import socket

    import datasets

    calls = []
    connect, load_dataset = socket.create_connection, datasets.load_dataset

    def counting_connect(address, *args, **kwargs):
        calls.append(("connect", address))
        return connect(address, *args, **kwargs)

    def counting_load_dataset(path, *args, **kwargs):
        calls.append(("load_dataset", path))
        return load_dataset(path, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting_connect)
    monkeypatch.setattr(datasets, "load_dataset", counting_load_dataset)
    return calls
