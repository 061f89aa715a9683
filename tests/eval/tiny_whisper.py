"""A tiny random Whisper checkpoint in the real layout (config, generation config, byte-level
tokenizer, feature extractor), so the transformers ASR path runs offline. It transcribes gibberish."""

import json
from pathlib import Path


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (what Whisper's byte-level BPE is built on)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def write_tiny_whisper(out) -> Path:
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    byte_tokens = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(byte_tokens)}
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    for t in specials:
        vocab[t] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    tok = WhisperTokenizer(
        str(out / "vocab.json"),
        str(out / "merges.txt"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
    )
    fe = WhisperFeatureExtractor(feature_size=80)
    WhisperProcessor(fe, tok).save_pretrained(out)
    V = len(vocab)
    cfg = WhisperConfig(
        vocab_size=V,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=32,
        pad_token_id=vocab["<|endoftext|>"],
        bos_token_id=vocab["<|endoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        decoder_start_token_id=vocab["<|startoftranscript|>"],
    )
    torch.manual_seed(0)
    m = WhisperForConditionalGeneration(cfg)
    g = GenerationConfig(
        decoder_start_token_id=vocab["<|startoftranscript|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
        no_timestamps_token_id=vocab["<|notimestamps|>"],
        max_length=16,
        lang_to_id={"<|en|>": vocab["<|en|>"]},
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
        is_multilingual=True,
        forced_decoder_ids=None,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    m.generation_config = g
    m.save_pretrained(out)
    return out
