"""Write a tiny CSM in exactly the on-disk layout of `sesame/csm-1b`, made by code (the demo's model).

No network here, so the demo (and the tests) use a *tiny* CSM (a few hundred thousand parameters:
backbone, depth decoder over 32 codebooks, a shrunken Mimi codec with Mimi's real strides, and a
byte-level tokenizer with CSM's special tokens), written with `save_pretrained` and loaded back
through the same `from_pretrained` path as the real model. The benchmarks' bigger random CSMs are
in ``bench/csm_models.py``, the other families' tiny checkpoints in ``tests/fixtures/``.

Files written (as in sesame/csm-1b): config.json, generation_config.json, model.safetensors
(or shards + index), tokenizer.json, tokenizer_config.json, special_tokens_map.json (when
transformers writes it), preprocessor_config.json / processor_config.json, chat_template.jinja.
"""

from pathlib import Path

# CSM's chat template (as published with sesame/csm-1b): each turn is
# <bos>[speaker]text<eos> followed, when the turn has audio, by <|AUDIO|><|audio_eos|>.
CHAT_TEMPLATE = (
    "\n{%- for message in messages %}\n"
    "    {%- if not message['role'] is string or not message['role'].isdigit() %}\n"
    "        {{- raise_exception(\"The role must be an integer or a stringified integer (e.g. '0') "
    'designating the speaker id") }}\n'
    "    {%- endif %}\n"
    "{%- endfor %}\n\n"
    "{%- for message in messages %}\n"
    "    {{- bos_token }}\n"
    "    {{- '[' + message['role'] + ']' }}\n"
    "    {{- message['content'][0]['text'] }}\n"
    "    {{- eos_token }}\n"
    "    {%- if message['content']|length > 1 %}\n"
    "        {{- '<|AUDIO|><|audio_eos|>' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
)

# Llama-3's special tokens as CSM uses them; in the tiny tokenizer they follow the 256 byte tokens.
SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>"]
TINY_TEXT_VOCAB = 264  # 256 bytes + 4 specials, rounded up

# The tiny sizes: every structural feature of CSM-1B kept (32 codebooks, GQA, tied audio embeddings,
# Mimi's strides so 1920 samples make one 12.5 Hz frame), every width shrunk.
TINY_CODEBOOK = 64  # Mimi codebook entries; CSM's audio vocab adds 3 (eos 0 is a code, pad = size+2)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
)
TINY_DECODER = dict(
    backbone_hidden_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=33,
)
TINY_MIMI = dict(
    hidden_size=32,
    num_filters=4,
    codebook_dim=16,
    vector_quantization_hidden_dimension=16,
    upsample_groups=32,
    num_hidden_layers=1,
    intermediate_size=64,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=16,
)


def tiny_config(num_codebooks: int = 32):
    """The tiny CsmConfig (a few hundred thousand parameters)."""
    from transformers import CsmConfig, CsmDepthDecoderConfig, MimiConfig

    vocab = TINY_CODEBOOK + 3  # as 2048 + 3 = 2051 in CSM-1B
    specials = {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}
    codec = MimiConfig(codebook_size=TINY_CODEBOOK, num_quantizers=num_codebooks, **TINY_MIMI)
    decoder = CsmDepthDecoderConfig(num_codebooks=num_codebooks, vocab_size=vocab, **TINY_DECODER)
    return CsmConfig(
        num_codebooks=num_codebooks,
        vocab_size=vocab,
        text_vocab_size=TINY_TEXT_VOCAB,
        codebook_pad_token_id=vocab - 1,
        codebook_eos_token_id=0,
        bos_token_id=specials["<|begin_of_text|>"],
        pad_token_id=specials["<|AUDIO|>"],
        audio_token_id=specials["<|AUDIO|>"],
        audio_eos_token_id=specials["<|audio_eos|>"],
        depth_decoder_config=decoder.to_dict(),
        codec_config=codec.to_dict(),
        **TINY,
    )


def build_tokenizer(special_start: int = 256):
    """A byte-level BPE tokenizer (no merges) with CSM's special tokens and post-processor.

    The specials get ids ``special_start`` … ``special_start + 3``: 256 in the tiny model, 128000
    (Llama-3's ids, as in CSM-1B's config) for full-size checkpoints, with never-produced filler
    entries in between so the ids line up with the model config.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(byte_alphabet))}
    for i in range(len(vocab), special_start):
        vocab[f"<|filler_{i}|>"] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    bos, eos = SPECIAL_TOKENS[0], SPECIAL_TOKENS[1]
    # CSM-1B wraps a plain `tokenizer(text)` call in <bos> … <eos>, as the original generator did.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {bos}:1 $B:1 {eos}:1",
        special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos, model_max_length=2048
    )


def _set_generation_defaults(model) -> None:
    # sesame/csm-1b's generation_config.json
    gen = model.generation_config
    gen._from_model_config = False
    gen.max_new_tokens = 125
    gen.do_sample = True
    gen.top_k = 50
    gen.temperature = 0.9
    gen.depth_decoder_do_sample = True
    gen.depth_decoder_top_k = 50
    gen.depth_decoder_temperature = 0.9


def write_processor(path: Path, special_start: int = 256) -> None:
    """Tokenizer, feature extractor and chat template, saved the way CsmProcessor saves them."""
    from transformers import CsmProcessor, EncodecFeatureExtractor

    feature_extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0)
    processor = CsmProcessor(
        feature_extractor=feature_extractor,
        tokenizer=build_tokenizer(special_start),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(path)


def write_tiny_csm(path, seed: int = 0) -> Path:
    """Write a tiny CSM to ``path`` (deterministic from ``seed``) and return the path; it loads as
    sesame/csm-1b does.

    >>> write_tiny_csm(tmp_path / "tiny")            # doctest: +SKIP
    >>> CsmForConditionalGeneration.from_pretrained(tmp_path / "tiny")   # doctest: +SKIP
    """
    import torch
    from transformers import CsmForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(tiny_config())
    # Random init leaves some weights (norms, Mimi's layer scales) at constants; perturb them a
    # little so no adapter or test passes by symmetry. Fixed seed: the same bytes every time.
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("codec_model."):
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)
        # Mimi's codebooks start all zero (every clip would encode to code 0): random centroids,
        # so different audio gets different codes and a codebook mix-up cannot pass unnoticed.
        for name, buffer in model.codec_model.named_buffers():
            if name.endswith("codebook.embed_sum"):
                buffer.copy_(torch.randn(buffer.shape, generator=gen))
    _set_generation_defaults(model)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar for one tiny shard is noise in the demo and tests
    model.save_pretrained(path)
    write_processor(path)
    return path
