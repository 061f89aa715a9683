"""Count what would make the host wait for a GPU, on any device (CPU included): reading a tensor's
value (``.item()``, ``float()``, ``bool()``, ``.tolist()``: aten's ``_local_scalar_dense``), sizes
only the data knows (``nonzero``, boolean masks, ``masked_select``, ``unique``), and moves to the
host (``.cpu()``, ``.numpy()``). On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` is the real
check (tests/cuda); this one runs where ``make test`` runs."""

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_consecutive", "item"}


class SyncCounter(TorchDispatchMode):
    """``with SyncCounter() as c: ...`` then ``c.calls``: the syncing ops seen, in order."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name == "index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else ())
        )
        if name in SYNCING or bool_index:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def counting_syncs(monkeypatch):
    """A `SyncCounter` that also counts ``Tensor.cpu`` / ``Tensor.numpy`` (no-ops on a CPU tensor)."""
    counter = SyncCounter()
    for method in ("cpu", "numpy"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _name=method, **kwargs):
            counter.calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    with counter:
        yield counter
    monkeypatch.undo()
