"""VoxCPM's diffusion draws seeded per clip, so a clip draws the same numbers in any batch.

VoxCPM's training forward flattens a batch (B, S) to B x S rows, one per position, and its flow
loss (``UnifiedCFM.compute_loss``) draws one value per row for the guidance drop, the noisy
condition and the time steps, and a noise tensor per row, all from torch's global generator: what a
clip draws depends on the clips beside it, so 1 process x batch 4 and 2 processes x batch 2 see
other numbers. Here each clip draws its rows from its own generator, seeded by the run's seed, the
epoch and the clip's index (`clip_seeds`); rows past its length (padding) get zeros (their loss
weight is zero). Every row is its own problem for the local DiT, so a clip's loss and gradients are
the same whatever micro-batch or process it lands in.

The draws are replaced, not VoxCPM's code: while its ``feat_decoder.compute_loss`` runs (only
there: a mode on the whole forward costs ~10 us a torch call), a `torch.overrides.TorchFunctionMode`
answers its ``torch.rand``/``randn`` (and ``_like``) calls; any such call whose first dimension is
not B x S is an error (the VoxCPM code changed), never a silent other draw.

    >>> clip_seeds(0, 0, [0, 1]) == clip_seeds(0, 0, [5, 0, 1])[1:]
    True
"""

import contextlib
import contextvars
import weakref
from types import MethodType

import torch
from torch.overrides import TorchFunctionMode

from voxlora.counter_hash import epoch_seed
from voxlora.errors import VoxloraError

_ACTIVE = contextvars.ContextVar("voxcpm_clip_draws", default=None)  # the PerClipDraws of `per_clip`
_FLOWS = weakref.WeakKeyDictionary()  # model -> its feat_decoder
DRAWS = {
    torch.rand: torch.rand,
    torch.randn: torch.randn,
    torch.rand_like: torch.rand,
    torch.randn_like: torch.randn,
}


def clip_seeds(seed: int, epoch: int, clips) -> tuple[int, ...]:
    """One seed per clip (its index in the training set) from the run's seed and the epoch alone."""
    base = epoch_seed(seed, epoch)
    return tuple(epoch_seed(base, int(c) + 1) for c in torch.as_tensor(clips).reshape(-1).tolist())


def lengths_of(batch: dict) -> list[int]:
    """Each row's packed length: the positions where the text or the audio track is on (B,)."""
    on = (batch["text_mask"] != 0) | (batch["audio_mask"] != 0)  # (B, S), padding off
    return on.sum(dim=1).tolist()


class PerClipDraws(TorchFunctionMode):
    """Inside it, a draw of B x S rows is B clips' own draws, each padded with zeros to S rows."""

    def __init__(self, seeds, lengths, width: int):
        super().__init__()
        if len(seeds) != len(lengths):
            raise VoxloraError(f"{len(seeds)} clip seeds for a batch of {len(lengths)}")
        self.seeds, self.lengths, self.width = [int(s) for s in seeds], list(lengths), width
        self.generators = None  # made on the device of the first draw

    def _generators(self, device) -> list[torch.Generator]:
        if self.generators is None:
            self.generators = [torch.Generator(device).manual_seed(s) for s in self.seeds]
        return self.generators

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        draw = DRAWS.get(func)
        if draw is None or kwargs.get("generator") is not None:
            return func(*args, **kwargs)
        if func in (torch.rand_like, torch.randn_like):
            like = args[0]
            size = tuple(like.shape)
            kwargs.setdefault("dtype", like.dtype)
            kwargs.setdefault("device", like.device)
        else:
            size = kwargs.pop("size", None) or args
            size = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else tuple(size)
        rows = len(self.lengths) * self.width
        if not size or size[0] != rows:
            raise VoxloraError(
                f"VoxCPM's training forward drew {func.__name__}{size}, not one row per position "
                f"({rows}): this voxcpm version is not one voxlora knows"
            )
        kwargs = {k: kwargs[k] for k in ("dtype", "device") if kwargs.get(k) is not None}
        generators = self._generators(torch.device(kwargs.get("device", "cpu")))
        parts = []
        for generator, n in zip(generators, self.lengths, strict=True):
            mine = draw((n, *size[1:]), generator=generator, **kwargs)
            parts += [mine, mine.new_zeros((self.width - n, *size[1:]))]
        return torch.cat(parts)


def _compute_loss(self, *args, **kwargs):
    """VoxCPM's own ``compute_loss``, its draws answered per clip inside `per_clip`."""
    own = type(self).compute_loss
    mode = _ACTIVE.get()
    if mode is None:
        return own(self, *args, **kwargs)
    with mode:
        return own(self, *args, **kwargs)


def _flow(model):
    """The model's flow-matching module (``feat_decoder``), set to take per-clip draws, found once."""
    flow = _FLOWS.get(model)
    if flow is None:
        found = [m for name, m in model.named_modules() if name.rpartition(".")[2] == "feat_decoder"]
        if len(found) != 1:
            raise VoxloraError("not a VoxCPM model: no feat_decoder (its flow-matching loss)")
        flow = found[0]
        if "compute_loss" not in vars(flow):  # a bound method: a deep copy binds its own copy
            flow.compute_loss = MethodType(_compute_loss, flow)
        _FLOWS[model] = flow
    return flow


@contextlib.contextmanager
def per_clip(seeds, batch: dict, model, lengths=None):
    """Inside it, ``model``'s forward on ``batch`` (`batch.collate`'s tracks, or VoxCPM's packer's)
    draws its diffusion noise per clip, from ``seeds`` (one a row). ``lengths``: the rows' packed
    lengths if known (`lengths_of` reads them off the batch: a wait for the device)."""
    _flow(model)
    lengths = lengths_of(batch) if lengths is None else list(lengths)
    mode = PerClipDraws(seeds, lengths, batch["text_mask"].shape[1])
    token = _ACTIVE.set(mode)
    try:
        yield mode
    finally:
        _ACTIVE.reset(token)
    if mode.generators is None:
        raise VoxloraError("VoxCPM's training forward drew no diffusion noise: not a forward voxlora knows")
