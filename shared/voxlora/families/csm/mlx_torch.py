"""A csm-1b-mlx folder on the torch backend: transformers' CSM, converted at load.

``ckpt.safetensors`` is read under transformers' names (`mlx_layout.view_name`), its q/k rows put
back in transformers' halves convention (`mlx_layout.to_halves`); the codec (``codec_model.*``), the
processor and, when the folder has none, the config come from the ``--codec`` folder (sesame/csm-1b
layout). The state dict goes through ``CsmForConditionalGeneration.from_pretrained`` (its own key
handling and tying), every key checked: the result is the model the sesame/csm-1b folder would give.
"""

from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.families.csm import mlx_layout


def load_state(folder: Path, codec_folder: Path, config: dict) -> dict:
    """{transformers name: tensor} of the csm-1b-mlx model plus the codec folder's codec tensors."""
    from safetensors import safe_open

    from voxlora.modelfolder import weight_files

    dims = mlx_layout.head_dims(config)
    state = {}
    with safe_open(str(folder / mlx_layout.CKPT), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            hf, t = mlx_layout.view_name(name), f.get_tensor(name)
            if hf is None:
                raise VoxloraError(f"{folder / mlx_layout.CKPT}: {name} is not a csm-1b-mlx tensor")
            heads = mlx_layout.rope_heads(hf, t.shape, dims)
            state[hf] = mlx_layout.to_halves(t, heads).contiguous() if heads else t
    for file in weight_files(codec_folder):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118
                if name.startswith("codec_model."):
                    state[name] = f.get_tensor(name)
    return state


def load_model(folder: Path, codec_folder: Path, dtype):
    """transformers' CsmForConditionalGeneration (not yet moved or cast for the codec) and its config."""
    from transformers import CsmConfig, CsmForConditionalGeneration

    source = folder if (folder / "config.json").is_file() else codec_folder
    config = CsmConfig.from_pretrained(source)
    state = load_state(folder, codec_folder, config.to_dict())
    mlx_layout.check_config(config.to_dict(), {k: tuple(v.shape) for k, v in state.items()}, folder)
    try:
        model, info = CsmForConditionalGeneration.from_pretrained(
            None, config=config, state_dict=state, dtype=dtype, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise VoxloraError(f"{folder}: cannot load the CSM model: {str(e).splitlines()[0]}") from None
    problems = [f"{n}: missing" for n in info.get("missing_keys", ())]
    problems += [f"{n}: not in CSM" for n in info.get("unexpected_keys", ())]
    problems += [f"{n}: wrong shape" for n in info.get("mismatched_keys", ())]
    if problems:
        shown = sorted(map(str, problems))
        raise VoxloraError(f"{folder}: the weights do not fit the CSM config: " + "; ".join(shown[:6]))
    return model
