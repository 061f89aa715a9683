"""Higgs Audio v2's audio tokenizer as a codec: 24 kHz audio <-> (8, T) codes at 25 frames/s.

Encoding is the processor's own path (``DacFeatureExtractor`` then
``HiggsAudioV2TokenizerModel.encode`` at its highest bandwidth), one clip at a time, as
``HiggsAudioV2Processor.__call__`` does; decoding is ``HiggsAudioV2TokenizerModel.decode``. The
tokenizer is frozen and never targeted. Its identity for the codes cache is
`voxlora.backends.torch.codec.codec_identity` (config and every weight), so codes made by another
tokenizer are never reused.
"""

import numpy as np
import torch

from voxlora.errors import VoxloraError

SAMPLE_RATE = 24000


@torch.inference_mode()
def encode(processor, audio: np.ndarray) -> torch.Tensor:
    """Mono float audio at 24 kHz -> (K, T) int64 codes."""
    codec = processor.audio_tokenizer
    features = processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    features.pop("padding_mask", None)
    values = features["input_values"].to(codec.device, codec.dtype)  # (1, 1, samples)
    return codec.encode(values).audio_codes[0].long().cpu()  # (K, T)


@torch.inference_mode()
def decode(processor, codes: torch.Tensor) -> np.ndarray:
    """(K, T) codes -> mono float32 audio at 24 kHz (T * 960 samples)."""
    codec = processor.audio_tokenizer
    audio = codec.decode(codes.long()[None].to(codec.device)).audio_values  # (1, 1, samples)
    return audio[0, 0].float().cpu().numpy()


def frames(seconds: float) -> int:
    """Frames the tokenizer makes for ``seconds`` of audio (25 per second)."""
    return int(np.ceil(seconds * 25))


def clip_codes(processor, cache, audio_path) -> tuple[torch.Tensor, bool]:
    """(the (K, T) codes of one audio file, whether they came from the cache): from ``cache`` (a
    `CodesCache` for this tokenizer's identity) when there, else read (mono, resampled to 24 kHz),
    encoded once and stored."""
    from voxlora import audio
    from voxlora.codes_cache import file_sha256

    sha = file_sha256(audio_path)
    size = processor.audio_tokenizer.config.codebook_size
    K = processor.audio_tokenizer.config.num_quantizers
    codes = cache.get(sha, K, size)
    if codes is not None:
        return codes.long(), True
    x, sr = audio.load(audio_path)
    if len(x) == 0:
        raise VoxloraError("empty audio")
    x = audio.resample(x, sr, SAMPLE_RATE)  # load gives mono
    return cache.put(sha, encode(processor, x)).long(), False
