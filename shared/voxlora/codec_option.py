"""``--codec``: where a csm-1b-mlx model's codec and tokenizer come from (synth, lora-train).

A csm-1b-mlx folder (``senstella/csm-1b-mlx``: ``ckpt.safetensors`` alone) holds the two transformers
of CSM and nothing else. The Mimi codec, the text tokenizer with CSM's chat template, and the config
come from a folder (or hub id) in sesame/csm-1b's layout: ``sesame/csm-1b`` itself, or any CSM folder
with the same codec. Other layouts of the codec (kyutai/mimi, moshi's checkpoints) carry no CSM
tokenizer, so they are not accepted. Only the commands that encode or decode audio need it.
"""

import logging

import click

from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora")

codec_option = click.option(
    "--codec",
    metavar="FOLDER",
    default=None,
    help="For a csm-1b-mlx --model (ckpt.safetensors only): a sesame/csm-1b-layout folder or hub id "
    "giving the Mimi codec, tokenizer and config.",
)


def require_codec(model, codec, command: str) -> None:
    """One line when a csm-1b-mlx ``model`` is given without ``--codec``."""
    if codec is None:
        raise VoxloraError(
            f"{model}: a csm-1b-mlx model (ckpt.safetensors) has no codec or tokenizer; {command} needs "
            "--codec FOLDER (a sesame/csm-1b-layout folder or hub id, e.g. --codec sesame/csm-1b)"
        )


def codec_folder(model, codec, command: str):
    """The folder giving codec and processor: ``codec`` for a csm-1b-mlx ``model`` (required), else
    None (the model's own folder has them; ``--codec`` beside such a model is ignored, with a warning)."""
    from voxlora.modelfolder import is_mlx_ckpt, model_dir

    if not is_mlx_ckpt(model_dir(model)):
        if codec is not None:
            log.warning("--codec %s: not used, %s has its own codec and tokenizer", codec, model)
        return None
    require_codec(model, codec, command)
    return model_dir(codec)
