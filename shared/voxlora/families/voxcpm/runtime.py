"""VoxCPM's own model code, imported from the ``voxcpm`` package: its model modules only.

The ``voxcpm`` extra installs the package without its dependencies (they pin ``datasets<4`` and pull
a web UI, an ASR toolkit and hub clients voxlora does not need) plus the few its model modules
import (einops, librosa). Its trainer, UI and hub code are never imported. ``voxcpm/model/voxcpm.py``
imports torchaudio at load, to read prompt audio only; voxlora reads prompt audio itself
(`voxlora.audio`), so where no torchaudio matching the installed torch loads, the import goes
through with voxlora's stand-in (`voxlora.torchaudio_compat`).

`classes` gives one generation's classes by its config.json ``architecture``:

    >>> k = classes("voxcpm2")                                         # doctest: +SKIP
    >>> k.model.__name__, k.lora_config().target_proj_modules[-1]      # doctest: +SKIP
    ('VoxCPM2Model', 'fusion_concat_proj')
"""

import contextlib
import io
import logging
from dataclasses import dataclass

from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora")
ARCHITECTURES = ("voxcpm", "voxcpm2")  # config.json "architecture"; VoxCPM-0.5B and 1.5 are "voxcpm"


@dataclass(frozen=True)
class Classes:
    """One VoxCPM generation's classes, as its package defines them."""

    arch: str
    model: type  # VoxCPMModel | VoxCPM2Model
    config: type  # VoxCPMConfig (each generation has its own)
    encoder_config: type
    dit_config: type
    lora_config: type  # LoRAConfig: enable_lm, enable_dit, enable_proj, r, alpha, ...
    vae: type  # AudioVAE | AudioVAEV2
    vae_config: type


def _import_model_modules():
    from voxlora.torchaudio_compat import ensure_torchaudio  # the one shared work-around

    ensure_torchaudio()
    try:
        from voxcpm.model import voxcpm, voxcpm2
        from voxcpm.modules import audiovae
    except ImportError as e:
        raise VoxloraError(
            f"VoxCPM needs the voxcpm extra ({e}); install it with: pip install -e '.[voxcpm]' "
            "(make setup does)"
        ) from None
    return voxcpm, voxcpm2, audiovae


def classes(arch: str = "voxcpm") -> Classes:
    """The classes of the VoxCPM generation config.json's ``architecture`` names."""
    arch = (arch or "voxcpm").lower()
    if arch not in ARCHITECTURES:
        raise VoxloraError(f"config.json: architecture {arch!r} is not a VoxCPM ({', '.join(ARCHITECTURES)})")
    v1, v2, audiovae = _import_model_modules()
    mod, vae, vae_config = (
        (v2, audiovae.AudioVAEV2, audiovae.AudioVAEConfigV2)
        if arch == "voxcpm2"
        else (v1, audiovae.AudioVAE, audiovae.AudioVAEConfig)
    )
    return Classes(
        arch=arch,
        model=mod.VoxCPM2Model if arch == "voxcpm2" else mod.VoxCPMModel,
        config=mod.VoxCPMConfig,
        encoder_config=mod.VoxCPMEncoderConfig,
        dit_config=mod.VoxCPMDitConfig,
        lora_config=mod.LoRAConfig,
        vae=vae,
        vae_config=vae_config,
    )


@contextlib.contextmanager
def quiet():
    """VoxCPM prints its device and loading notes to stderr; they go to voxlora's debug log instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        log.debug("voxcpm: %s", line)
