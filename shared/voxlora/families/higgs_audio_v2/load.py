"""Load a Higgs Audio v2 checkpoint, in either layout, as transformers' model; never half-loaded.

``load_model(path)`` returns ``HiggsAudioV2ForConditionalGeneration`` for a folder in transformers'
layout (``model_type: higgs_audio_v2``) or in Boson's original one (``model_type: higgs_audio``,
renamed once in memory by `layout.to_transformers`). A missing, unexpected or mis-shaped tensor is
an error naming the first few, not a warning: training a model with random layers looks like
training and is not.

``load_processor(path)`` returns ``HiggsAudioV2Processor`` (text tokenizer, chat template, audio
tokenizer) from the same folder, after `voxlora.torchaudio_compat.ensure_torchaudio`.
"""

import json
import logging
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.families import read_config
from voxlora.families.higgs_audio_v2 import layout

log = logging.getLogger("voxlora")


def _read_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise VoxloraError(f"{path}: no *.safetensors weights")
    state = {}
    for f in files:
        state |= load_file(str(f))
    return state


def _check(info: dict, path) -> None:
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in info.get(kind) or ())
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{kind.replace('_', ' ')}: {', '.join(keys[:3])}{more}")
    if problems:
        raise VoxloraError(
            f"{path}: the checkpoint does not fit HiggsAudioV2ForConditionalGeneration ({'; '.join(problems)})"
        )


def quantization(device: str, quantize: str | None):
    """transformers' ``BitsAndBytesConfig`` for ``--quantize 4bit`` (QLoRA: NF4 weights, bf16 compute).

    CUDA and bitsandbytes only; anything else is one clear error before any weight loads.
    """
    if quantize is None:
        return None
    if quantize != "4bit":
        raise VoxloraError(f"--quantize {quantize}: only 4bit is supported")
    if not str(device).startswith("cuda"):
        raise VoxloraError(f"--quantize 4bit needs a CUDA GPU (bitsandbytes); this run is on {device}")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise VoxloraError("--quantize 4bit needs bitsandbytes: pip install bitsandbytes") from None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )  # fmt: skip


def load_model(
    path,
    dtype=None,
    use_text_head: bool = False,
    device: str | None = None,
    quantize=None,
    attention: str = "sdpa",
):
    """``HiggsAudioV2ForConditionalGeneration`` with every tensor loaded (either layout), its attention
    ``attention`` (transformers' ``attn_implementation``: sdpa, eager, flash_attention_2), set explicitly."""
    import torch
    from transformers import HiggsAudioV2Config, HiggsAudioV2ForConditionalGeneration

    path = Path(path)
    config = read_config(path)
    dtype = dtype or torch.float32
    kwargs = dict(
        dtype=dtype, output_loading_info=True, use_text_head=use_text_head, attn_implementation=attention
    )
    if quantize:
        kwargs |= dict(quantization_config=quantization(device or "cpu", quantize), device_map={"": device})
    if config.get("model_type") == "higgs_audio":
        hf_config = HiggsAudioV2Config(**layout.config_from_original(config, str(path / "config.json")))
        state = layout.to_transformers(_read_weights(path))
        if not use_text_head:
            state.pop("text_lm_head.weight", None)
        model, info = HiggsAudioV2ForConditionalGeneration.from_pretrained(
            None, config=hf_config, state_dict=state, **kwargs
        )
        log.info("%s: Boson's original layout, renamed to transformers' names in memory", path)
    elif config.get("model_type") == "higgs_audio_v2":
        model, info = HiggsAudioV2ForConditionalGeneration.from_pretrained(path, **kwargs)
    else:
        raise VoxloraError(f"{path}: model_type {config.get('model_type')!r} is not Higgs Audio v2")
    _check(info, path)
    if device and not quantize:
        model = model.to(device)
    return model.eval()


def audio_tokenizer_path(path, override=None) -> str:
    """Where the processor's audio tokenizer is: ``override``, else the reference the processor saved.

    ``HiggsAudioV2Processor.save_pretrained`` records only a name (a hub id such as
    ``bosonai/higgs-audio-v2-tokenizer``, or a folder); a relative name that is a folder inside the
    checkpoint is taken from there, so a checkpoint folder can carry its tokenizer with it.
    """
    if override:
        return str(override)
    config_file = Path(path) / "processor_config.json"
    try:
        saved = json.loads(config_file.read_text(encoding="utf-8"))["audio_tokenizer"][
            "audio_tokenizer_name_or_path"
        ]
    except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
        raise VoxloraError(
            f"{config_file}: no audio tokenizer recorded; an original-layout checkpoint needs the processor of "
            "the transformers-format repository (tokenizer, processor_config.json) and --audio-tokenizer"
        ) from None
    inside = Path(path) / saved
    return str(inside) if saved and inside.is_dir() else saved


def load_processor(path, device: str | None = None, audio_tokenizer=None):
    """``HiggsAudioV2Processor`` from ``path``: text tokenizer, chat template, audio tokenizer (frozen)."""
    from voxlora.torchaudio_compat import ensure_torchaudio

    ensure_torchaudio()
    from transformers import (
        AutoTokenizer,
        DacFeatureExtractor,
        HiggsAudioV2Processor,
        HiggsAudioV2TokenizerModel,
    )

    path = Path(path)
    codec_path = audio_tokenizer_path(path, audio_tokenizer)
    saved = json.loads((path / "processor_config.json").read_text(encoding="utf-8"))
    codec = HiggsAudioV2TokenizerModel.from_pretrained(codec_path).eval().requires_grad_(False)
    if device:
        codec.to(device)
    template = path / "chat_template.jinja"
    tokens = ("audio_token", "audio_bos_token", "audio_eos_token", "audio_delay_token")
    return HiggsAudioV2Processor(
        feature_extractor=DacFeatureExtractor(**saved.get("feature_extractor", {})),
        tokenizer=AutoTokenizer.from_pretrained(str(path)),
        audio_tokenizer=codec,
        chat_template=template.read_text(encoding="utf-8")
        if template.exists()
        else saved.get("chat_template"),
        audio_stream_bos_id=saved.get("audio_stream_bos_id", 1024),
        audio_stream_eos_id=saved.get("audio_stream_eos_id", 1025),
        **{k: saved[k] for k in tokens if k in saved},
    )
