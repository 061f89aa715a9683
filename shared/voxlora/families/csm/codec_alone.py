"""The Mimi codec of a CSM folder alone, on torch: built from its ``codec_config`` and loaded from
only the ``codec_model.*`` tensors of the folder's safetensors (the rest of CSM is never read).

`lora-train --backend mlx` codes its clips with the torch Mimi (so both backends share one codes
cache), but trains the model on MLX: loading the whole torch CSM for the codec would hold a second
copy of CSM-1B in memory while the MLX one loads. A CSM checkpoint stores its codec as
``codec_model.<name>`` in Mimi's checkpoint layout; the prefix is stripped here and transformers'
own `MimiModel.from_pretrained` (``state_dict=``) applies its key conversions, as it does for CSM.
"""

from pathlib import Path

from voxlora.errors import VoxloraError

PREFIX = "codec_model."


def load_codec(folder: Path):
    """(transformers' MimiModel in fp32 and eval mode, the folder's CsmConfig) of a CSM folder."""
    import torch
    from safetensors import safe_open
    from transformers import CsmConfig, MimiModel

    from voxlora.models.csm import model_dir, read_config, weight_files

    folder = model_dir(folder)
    read_config(folder)
    config = CsmConfig.from_pretrained(folder)
    state = {}
    for file in weight_files(folder):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if name.startswith(PREFIX):
                    state[name[len(PREFIX) :]] = f.get_tensor(name).float()
    if not state:
        raise VoxloraError(f"{folder}: no codec weights ({PREFIX}*) in the checkpoint")
    codec, info = MimiModel.from_pretrained(
        None, config=config.codec_config, state_dict=state, dtype=torch.float32, output_loading_info=True
    )
    problems = [f"{n}: missing" for n in info.get("missing_keys", ())]
    problems += [f"{n}: not in Mimi" for n in info.get("unexpected_keys", ())]
    problems += [f"{n}: wrong shape" for n in info.get("mismatched_keys", ())]
    if problems:
        shown = sorted(map(str, problems))
        raise VoxloraError(
            f"{folder}: the codec weights do not fit its codec_config: " + "; ".join(shown[:6])
        )
    codec.eval().requires_grad_(False)
    return codec, config
