"""``lora-train --compile``: ``torch.compile`` of the model's transformer stacks, at a few shapes.

Only the heavy modules are compiled (for CSM: the backbone and the depth decoder), as wrappers the
training loss calls (`attach` / `stacks`); the modules themselves stay as they were, so parameter
names, peft's adapter, checkpoints and generation (``--sample-every``) are unchanged. With
``dynamic=False``: one specialised graph per input shape. The batches come padded to a few shapes
(`voxlora.buckets`), so a run compiles once per bucket rather than once per batch; `Compiled.graphs`
counts what was compiled (dynamo's own counter), for the log and the metrics. The optimizer is not
compiled: its fused kernel is already one launch.
"""

import logging

import torch

log = logging.getLogger("voxlora")

BACKEND = "inductor"  # the tests use "aot_eager" (same graphs, no C++ compile)
RECOMPILE_LIMIT = 64  # shapes per module before dynamo gives up (its default 8 is below a long run's buckets)


class Compiled:
    """The compiled modules of one run and how many graphs dynamo has compiled since."""

    def __init__(self, modules: dict, backend: str | None = None):
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        self.backend = backend or BACKEND
        self.start = self._count()
        self.modules = {k: torch.compile(m, dynamic=False, backend=self.backend) for k, m in modules.items()}

    @staticmethod
    def _count() -> int:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

    @property
    def graphs(self) -> int:
        """Graphs compiled for these modules so far (each new shape adds its own)."""
        return self._count() - self.start

    def report(self) -> None:
        log.info("torch.compile (%s): %d graphs compiled", self.backend, self.graphs)


KEY = "voxlora_compiled"  # an entry of the model's __dict__: not a submodule, never in a state_dict


def attach(model: torch.nn.Module, compiled: Compiled) -> None:
    """Give ``model``'s training loss these compiled stacks (`stacks` reads them)."""
    model.__dict__[KEY] = compiled


def stacks(model: torch.nn.Module) -> dict:
    """The compiled stacks `attach` gave ``model`` ({} when not compiling)."""
    compiled = model.__dict__.get(KEY)
    return compiled.modules if compiled is not None else {}


def compiled_of(model: torch.nn.Module) -> "Compiled | None":
    return model.__dict__.get(KEY)
