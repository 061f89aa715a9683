"""A working ``torchaudio`` for the codecs that import it (Higgs Audio v2's tokenizer, VoxCPM).

Why: ``HiggsAudioV2TokenizerModel`` (transformers) does ``import torchaudio`` at module level and
calls ``torchaudio.functional.resample`` to feed its HuBERT branch 16 kHz; VoxCPM resamples with it
too. torchaudio's wheels are built against one torch release each, and the newest on the package
index (2.11) does not load beside torch 2.13: ``import torchaudio`` raises
``OSError: Could not load this library: .../_torchaudio.so``. No torchaudio exists for torch
2.12-2.15, so there is no matching pair to pin without moving torch itself back to 2.11 (on Linux
that is PyPI's CUDA build: a multi-GB download for every ``make setup`` and CI run).

What: ``ensure_torchaudio()`` is called by a family right before it imports such a codec.

- If a real torchaudio imports (a GPU machine where torch and torchaudio come as a matching pair),
  it is used unchanged.
- Otherwise (absent, or installed but its compiled library does not load), a small pure-torch
  stand-in is registered as ``torchaudio`` in ``sys.modules``: ``functional.resample`` and
  ``transforms.Resample`` are torchaudio's own band-limited sinc (Hann window) algorithm, the same
  arithmetic line for line (torchaudio 2.11 ``functional/functional.py``, BSD-2-Clause), so the
  codes a codec computes are those of a real install; ``load``/``save`` read and write through
  soundfile with torchaudio's ``(channels, frames)`` float32 convention. Nothing else of torchaudio
  is provided: anything else raises ``AttributeError`` naming this module.

``make setup`` installs nothing for this, and torch stays the one the Makefile installs. The stand-in
makes transformers' ``is_torchaudio_available()`` true for this process (its cache is cleared), so
``is_speech_available()`` follows; feature extractors that would then call ``torchaudio.compliance``
are not among the codecs voxlora loads.
"""

import importlib.machinery
import logging
import math
import sys
import types

log = logging.getLogger(__name__)

STANDIN_VERSION = "0+voxlora.standin"


def ensure_torchaudio() -> str:
    """Make ``import torchaudio`` work; returns ``"torchaudio <version>"`` or ``"voxlora stand-in"``."""
    existing = sys.modules.get("torchaudio")
    if existing is not None and getattr(existing, "__version__", "") == STANDIN_VERSION:
        return "voxlora stand-in"
    try:
        import torchaudio  # noqa: PLC0415 (the import itself is the check)

        torchaudio.functional.resample  # noqa: B018 (loads the functional module)
        return f"torchaudio {torchaudio.__version__}"
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
        del sys.modules[name]
    install_standin()
    log.info("torchaudio unusable here (%s): using voxlora's stand-in resampler", reason)
    return "voxlora stand-in"


def install_standin() -> types.ModuleType:
    """Register the stand-in as ``torchaudio`` (and its submodules) and clear transformers' check."""
    root = _module("torchaudio", __version__=STANDIN_VERSION, load=load, save=save)
    functional = _module("torchaudio.functional", resample=resample)
    transforms = _module("torchaudio.transforms", Resample=_resample_module_class())
    root.functional, root.transforms = functional, transforms
    sys.modules.update({m.__name__: m for m in (root, functional, transforms)})
    _clear_transformers_cache()
    return root


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name, f"voxlora stand-in for {name} (see voxlora.torchaudio_compat)")
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() needs one
    module.__file__ = __file__
    module.__dict__.update(attrs)
    if "." not in name:
        module.__path__ = []  # a package, so "import torchaudio.functional" resolves from sys.modules
    return module


def _clear_transformers_cache() -> None:
    """Let an already-imported transformers see the stand-in.

    ``is_torchaudio_available`` is an ``lru_cache``; and ``import transformers`` records, in each lazy
    module, the names whose backends were missing then (``_object_missing_backend``), handing out an
    import-error ``Placeholder`` class for them (``HiggsAudioV2TokenizerModel`` among them, which the
    processor looks up by name). Both records are corrected for torchaudio only.
    """
    utils = sys.modules.get("transformers.utils.import_utils")
    if utils is None:
        return  # transformers not imported yet: it will find the stand-in itself
    for check in ("is_torchaudio_available", "is_speech_available"):
        cache_clear = getattr(getattr(utils, check, None), "cache_clear", None)
        if cache_clear is not None:
            cache_clear()
    lazy = getattr(utils, "_LazyModule", None)
    for module in [m for m in list(sys.modules.values()) if lazy is not None and isinstance(m, lazy)]:
        missing = getattr(module, "_object_missing_backend", {})
        for name in [n for n, backends in missing.items() if "torchaudio" in backends]:
            rest = [b for b in missing[name] if b != "torchaudio"]
            if rest:
                missing[name] = rest
                continue
            del missing[name]
            if getattr(module.__dict__.get(name), "is_dummy", False):  # a cached Placeholder
                del module.__dict__[name]


def sinc_resample_kernel(
    orig_freq: int,
    new_freq: int,
    gcd: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    device=None,
    dtype=None,
):
    """torchaudio's ``_get_sinc_resample_kernel`` (Hann window): ``(new, 1, taps)`` kernels and the width.

    Example: 24000 -> 16000 Hz has gcd 8000, so 3 input samples make 2 output samples; each of the
    2 kernels spans ``2 * width + 3`` input samples, ``width = ceil(6 * 3 / (2 * 0.99)) = 10``.
    """
    import torch

    if int(orig_freq) != orig_freq or int(new_freq) != new_freq:
        raise ValueError("resample needs integer frequencies")
    if lowpass_filter_width <= 0:
        raise ValueError("Low pass filter width should be positive.")
    orig_freq, new_freq = int(orig_freq) // gcd, int(new_freq) // gcd
    base_freq = min(orig_freq, new_freq) * rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    idx_dtype = dtype if dtype is not None else torch.float64
    idx = torch.arange(-width, width + orig_freq, dtype=idx_dtype, device=device)[None, None] / orig_freq
    t = torch.arange(0, -new_freq, -1, dtype=dtype, device=device)[:, None, None] / new_freq + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    scale = base_freq / orig_freq
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    if dtype is None:
        kernels = kernels.to(dtype=torch.float32)
    return kernels, width


def apply_sinc_resample_kernel(waveform, orig_freq: int, new_freq: int, gcd: int, kernel, width: int):
    """torchaudio's ``_apply_sinc_resample_kernel``: ``(..., time)`` in, ``(..., ceil(time * new / orig))`` out."""
    import torch

    if not waveform.is_floating_point():
        raise TypeError(f"Expected floating point type for waveform tensor, but received {waveform.dtype}.")
    orig_freq, new_freq = int(orig_freq) // gcd, int(new_freq) // gcd
    shape = waveform.size()
    waveform = waveform.view(-1, shape[-1])  # (N, T)
    num_wavs, length = waveform.shape
    waveform = torch.nn.functional.pad(waveform, (width, width + orig_freq))
    resampled = torch.nn.functional.conv1d(waveform[:, None], kernel, stride=orig_freq)  # (N, new, T')
    resampled = resampled.transpose(1, 2).reshape(num_wavs, -1)
    target_length = torch.ceil(torch.as_tensor(new_freq * length / orig_freq)).long()
    resampled = resampled[..., :target_length]
    return resampled.view(shape[:-1] + resampled.shape[-1:])


def resample(
    waveform,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    resampling_method: str = "sinc_interp_hann",
    beta=None,
):
    """``torchaudio.functional.resample`` with its default (and only here) Hann-windowed sinc method."""
    if resampling_method not in ("sinc_interp_hann", "sinc_interpolation"):
        raise ValueError(
            f"voxlora's torchaudio stand-in resamples with sinc_interp_hann only, not {resampling_method}"
        )
    if orig_freq <= 0.0 or new_freq <= 0.0:
        raise ValueError("Original frequency and desired frequecy should be positive")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(int(orig_freq), int(new_freq))
    kernel, width = sinc_resample_kernel(
        orig_freq, new_freq, gcd, lowpass_filter_width, rolloff, waveform.device, waveform.dtype
    )
    return apply_sinc_resample_kernel(waveform, orig_freq, new_freq, gcd, kernel, width)


def _resample_module_class():
    import torch

    class Resample(torch.nn.Module):
        """``torchaudio.transforms.Resample``: the kernel computed once, applied per call."""

        def __init__(
            self,
            orig_freq: int = 16000,
            new_freq: int = 16000,
            resampling_method: str = "sinc_interp_hann",
            lowpass_filter_width: int = 6,
            rolloff: float = 0.99,
            beta=None,
            *,
            dtype=None,
        ):
            super().__init__()
            self.orig_freq, self.new_freq = orig_freq, new_freq
            self.gcd = math.gcd(int(orig_freq), int(new_freq))
            self.lowpass_filter_width, self.rolloff = lowpass_filter_width, rolloff
            if orig_freq != new_freq:
                kernel, self.width = sinc_resample_kernel(
                    orig_freq, new_freq, self.gcd, lowpass_filter_width, rolloff, dtype=dtype
                )
                self.register_buffer("kernel", kernel, persistent=False)

        def forward(self, waveform):
            if self.orig_freq == self.new_freq:
                return waveform
            return apply_sinc_resample_kernel(
                waveform, self.orig_freq, self.new_freq, self.gcd, self.kernel.to(waveform), self.width
            )

    return Resample


def load(path, *args, **kwargs):
    """``torchaudio.load`` for plain files: ``(float32 tensor (channels, frames), sample_rate)``."""
    import soundfile
    import torch

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (frames, channels)
    return torch.from_numpy(data.T.copy()), rate


def save(path, waveform, sample_rate: int, *args, **kwargs) -> None:
    """``torchaudio.save`` for a ``(channels, frames)`` float tensor, format from the file name."""
    import soundfile

    soundfile.write(str(path), waveform.detach().cpu().float().numpy().T, int(sample_rate))
