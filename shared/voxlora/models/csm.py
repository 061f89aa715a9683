"""Load Sesame CSM for the torch backend, from a Hugging Face repo id or a local folder.

A local folder must be in the layout of `sesame/csm-1b` (config.json with model_type "csm",
safetensors weights, tokenizer and processor files). A repo id is fetched with
`huggingface_hub.snapshot_download`, which honours HF_HUB_OFFLINE and the local cache.

Everything that only needs names and shapes (target selection, fingerprints, `--dry-run`,
merging) uses `model_dir`, `read_config` and `weight_shapes`, which never load weights.
"""

from dataclasses import dataclass
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.jsonfile import read_json_object
from voxlora.modelfolder import (  # noqa: F401  (the folder helpers, where callers have always found them)
    SIDE_FILES,
    base_name,
    model_dir,
    torch_dtype,
    weight_files,
    weight_shapes,
)

CSM_MODEL_TYPE = "csm"


def read_config(model) -> dict:
    """config.json of ``model`` as a dict, checked to be a CSM model."""
    path = model_dir(model) / "config.json"
    config = read_json_object(path)
    if config.get("model_type") != CSM_MODEL_TYPE:
        raise VoxloraError(
            f"{path}: not a CSM model (model_type is {config.get('model_type')!r}, expected 'csm')"
        )
    return config


@dataclass
class CsmBundle:
    """A loaded CSM: the model (with its Mimi codec as ``model.codec_model``) and its processor."""

    model: object  # transformers.CsmForConditionalGeneration
    processor: object  # transformers.CsmProcessor (tokenizer + feature extractor + chat template)
    path: Path

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def codec(self):
        return self.model.codec_model

    @property
    def config(self):
        return self.model.config

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.codec_config.sampling_rate)


def load_csm(
    model, dtype: str = "fp32", device: str = "cpu", codec=None, attention: str = "sdpa"
) -> CsmBundle:
    """Load a CSM model and processor for the torch backend.

    A csm-1b-mlx folder is converted at load (`voxlora.families.csm.mlx_torch`), its codec and
    processor taken from ``codec`` (``--codec``: a sesame/csm-1b-layout folder or hub id).
    The codec stays in fp32 whatever ``dtype`` is: Mimi's quantizer is not meant for half precision.
    ``attention`` is transformers' ``attn_implementation`` for the whole model (sdpa, eager,
    flash_attention_2: `voxlora.backends.torch.attention`), set explicitly, not left to its default.
    """
    from transformers import AutoProcessor, CsmForConditionalGeneration

    from voxlora.codec_option import codec_folder

    folder = model_dir(model)
    source = codec_folder(folder, codec, "the torch backend")  # csm-1b-mlx: codec, processor from --codec
    read_config(source or folder)
    if source is None:
        weight_files(folder)  # refuse pickle-only folders before transformers looks at them
    try:
        if source is None:
            csm = CsmForConditionalGeneration.from_pretrained(
                folder, dtype=torch_dtype(dtype), use_safetensors=True, attn_implementation=attention
            )
        else:
            from voxlora.families.csm.mlx_torch import load_model

            csm = load_model(folder, source, torch_dtype(dtype))
            csm.set_attn_implementation(attention)
        processor = AutoProcessor.from_pretrained(source or folder)
    except (OSError, ValueError) as e:
        raise VoxloraError(f"{folder}: cannot load the CSM model: {str(e).splitlines()[0]}") from None
    csm.codec_model.float()
    csm.to(device)
    csm.eval()
    return CsmBundle(model=csm, processor=processor, path=folder)
