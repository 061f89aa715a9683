"""A tiny Higgs Audio v2 made with transformers' own classes and ``save_pretrained`` (no network).

``write_tiny_higgs_hf(path)`` writes, into one folder, what ``bosonai/higgs-audio-v2-generation-3B-base``
converted to transformers holds: ``HiggsAudioV2ForConditionalGeneration`` (config.json +
model.safetensors) and ``HiggsAudioV2Processor`` (a byte-level text tokenizer with Higgs's special
tokens, the DacFeatureExtractor and chat template of transformers' conversion script, and a tiny
``HiggsAudioV2TokenizerModel`` in ``audio_tokenizer/``). Widths are scaled down; the audio side keeps
the real rates: 24 kHz in, hop 960 (25 frames/s), HuBERT at 16 kHz, 8 codebooks.

``write_tiny_higgs_original(hf_dir, path)`` writes the same weights in Boson's original release
layout (``layers.N.…``, ``audio_decoder_proj.audio_lm_head``, ``audio_codebook_embeddings``,
``model_type: higgs_audio`` with a nested ``text_config``) plus a Whisper-style ``audio_tower``
stand-in, as boson_multimodal's checkpoints carry one.
"""

import json
from pathlib import Path

# transformers' convert_higgs_audio_v2_to_hf.py CHAT_TEMPLATE, trimmed of the scene branch.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- if messages[0]['content'] is string %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- else %}{%- set system_message = messages[0]['content'][0]['text']|trim %}{%- endif %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}{{- raise_exception('A system message is required but not provided!') }}{%- endif %}"
    '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}{{- system_message }}{{- "<|eot_id|>" }}'
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}{{- '<|audio_out_bos|><|AUDIO_OUT|><|audio_eos|>' }}"
    "{%- else %}{%- if message['content'] is string %}{{- message['content'] | trim }}"
    "{%- else %}{%- for item in message['content'] %}{%- if item['type'] == 'text' %}{{- item['text'] | trim }}"
    "{%- endif %}{%- endfor %}{%- endif %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n<|audio_out_bos|>' }}"
    "{%- endif %}"
)

SPECIAL = [  # ids 256.. after the 256 byte tokens
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|audio_out_bos|>",
    "<|AUDIO_OUT|>",
    "<|audio_eos|>",
    "<|reserved_special_token_6|>",
]
IDS = {t: 256 + i for i, t in enumerate(SPECIAL)}
CODES = 32  # codes per codebook of the tiny audio tokenizer (1024 in the real one)

MODEL = dict(
    vocab_size=272,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=4096,
    num_codebooks=8,
    codebook_size=CODES + 2,  # codes + stream bos/eos, as the real 1026
    pad_token_id=IDS["<|end_of_text|>"],
    bos_token_id=IDS["<|begin_of_text|>"],
    eos_token_id=IDS["<|eot_id|>"],
    audio_token_id=IDS["<|AUDIO_OUT|>"],
    audio_bos_token_id=IDS["<|audio_out_bos|>"],
    audio_delay_token_id=IDS["<|reserved_special_token_6|>"],
    audio_stream_bos_id=CODES,
    audio_stream_eos_id=CODES + 1,
)

AUDIO_TOKENIZER = dict(
    target_bandwidths=[0.5, 1.0],  # 1000 * 1.0 // (25 frames/s * 5 bits) = 8 quantizers
    codebook_size=CODES,
    codebook_dim=4,
    acoustic_model_config=dict(
        encoder_hidden_size=2,
        downsampling_ratios=[8, 5, 4, 2, 3],  # hop 960 at 24 kHz: 25 frames/s
        decoder_hidden_size=32,
        upsampling_ratios=[8, 5, 4, 2, 3],
        hidden_size=8,
        n_codebooks=1,
        codebook_size=2,
        codebook_dim=2,
    ),
    semantic_model_config=dict(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        conv_dim=[8] * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    ),
)


def _text_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: b for b, ch in bytes_to_unicode().items()}
    vocab |= IDS
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
        additional_special_tokens=SPECIAL[2:],
    )
    return tok


def write_tiny_higgs_hf(path, seed: int = 0) -> Path:
    """Write the tiny model + processor (``audio_tokenizer/`` inside) to ``path``; returns it."""
    import torch
    from transformers import (
        DacFeatureExtractor,
        HiggsAudioV2Config,
        HiggsAudioV2ForConditionalGeneration,
        HiggsAudioV2Processor,
        HiggsAudioV2TokenizerConfig,
    )
    from voxlora.torchaudio_compat import ensure_torchaudio

    ensure_torchaudio()
    from transformers import HiggsAudioV2TokenizerModel

    path = Path(path)
    torch.manual_seed(seed)
    model = HiggsAudioV2ForConditionalGeneration(
        HiggsAudioV2Config(**MODEL), use_text_head=True
    )  # as the real one
    with torch.no_grad():  # the real heads are not near-zero: let the tiny one have opinions too
        model.audio_lm_head.weight.normal_(0, 0.5)
        model.text_lm_head.weight.normal_(0, 0.2)
    model.generation_config.do_sample = True
    model.save_pretrained(path)

    torch.manual_seed(seed + 1)
    audio_tokenizer = HiggsAudioV2TokenizerModel(HiggsAudioV2TokenizerConfig(**AUDIO_TOKENIZER)).eval()
    audio_tokenizer.save_pretrained(path / "audio_tokenizer")
    audio_tokenizer.name_or_path = "audio_tokenizer"  # what processor_config.json records: the folder inside
    feature_extractor = DacFeatureExtractor(
        feature_size=1,
        hop_length=1,
        padding_side="right",
        padding_value=0.0,
        sampling_rate=24000,
        return_attention_mask=True,
    )
    processor = HiggsAudioV2Processor(
        feature_extractor=feature_extractor,
        tokenizer=_text_tokenizer(),
        audio_tokenizer=audio_tokenizer,
        chat_template=CHAT_TEMPLATE,
        audio_stream_bos_id=CODES,
        audio_stream_eos_id=CODES + 1,
    )
    processor.save_pretrained(path)
    return path


def write_tiny_higgs_original(hf_dir, path) -> Path:
    """The model in ``hf_dir`` in Boson's original layout (config and weights; no processor)."""
    import torch
    from safetensors.torch import load_file, save_file
    from voxlora.families.higgs_audio_v2.layout import config_to_original, to_original

    hf_dir, path = Path(hf_dir), Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    state = to_original(load_file(str(hf_dir / "model.safetensors")))
    g = torch.Generator().manual_seed(7)  # boson_multimodal's Whisper audio-in tower, never used for TTS
    state["audio_tower.conv1.weight"] = torch.randn(8, 4, 3, generator=g)
    state["audio_encoder_proj.linear.weight"] = torch.randn(config["hidden_size"], 8, generator=g)
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    text = json.dumps(config_to_original(config), indent=2)
    (path / "config.json").write_text(text, encoding="utf-8")
    return path
