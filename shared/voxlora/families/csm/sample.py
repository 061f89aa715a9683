"""Sample CSM audio codes that the codec can decode, and decode them into a waveform.

CSM's audio vocabulary is the codec's codebook plus 3 ids (2048 + 3 = 2051 in CSM-1B; 64 + 3 in
the tiny test model). Sampling can pick one of those 3 extra ids, and no codec can decode them
(Mimi fails with ``IndexError: index out of range``). So every id >= the codec's ``codebook_size`` is
suppressed in both samplers: the backbone (first codebook) through ``suppress_tokens``, the depth
decoder (codebooks 1..31) through ``depth_decoder_suppress_tokens``, which transformers' CSM
generation hands to the depth decoder's own generation config. The model itself is never patched.

End of audio is CSM's: a frame whose codebooks are all ``codebook_eos_token_id`` (0) stops
generation (transformers checks every codebook but the last, and so does `trim_at_eos`). That frame
is a marker, not audio. A clip with no audio frame before it is an error, never a silent WAV.
"""

import numpy as np
import torch

from voxlora.errors import VoxloraError


def undecodable_ids(config) -> list[int]:
    """Audio ids the backbone and depth decoder may score but the codec cannot decode.

    >>> from types import SimpleNamespace as NS
    >>> undecodable_ids(NS(vocab_size=67, codec_config=NS(codebook_size=64)))
    [64, 65, 66]
    """
    return list(range(int(config.codec_config.codebook_size), int(config.vocab_size)))


def sampling_kwargs(config, temperature: float, top_k: int) -> dict:
    """``generate`` keyword arguments: the same sampler for the backbone and the depth decoder.

    ``temperature`` 0 means greedy (argmax) decoding in both.
    """
    suppress = undecodable_ids(config)
    if temperature < 0 or top_k < 0:
        raise VoxloraError(f"temperature ({temperature}) and top-k ({top_k}) must not be negative")
    if temperature == 0:
        sampler = {"do_sample": False}
    else:
        sampler = {"do_sample": True, "temperature": float(temperature), "top_k": int(top_k) or None}
    out = {"suppress_tokens": suppress, "depth_decoder_suppress_tokens": suppress}
    for key, value in sampler.items():
        out[key] = value
        out[f"depth_decoder_{key}"] = value
    return out


@torch.inference_mode()
def generate_codes(model, inputs, max_frames: int, temperature: float, top_k: int) -> torch.Tensor:
    """Audio codes (T, K) for one prompt through transformers' own ``generate``, at most ``max_frames``
    frames (the eos frame included): the reference `generate.CsmGenerator` (what synth runs) is
    tested against. Seeding is the caller's: sampling draws from torch's global generator.
    """
    codes = model.generate(
        **inputs, max_new_tokens=max_frames, **sampling_kwargs(model.config, temperature, top_k)
    )  # (1, T, K)
    return codes[0].cpu()


def trim_at_eos(codes: torch.Tensor, eos_id: int = 0) -> tuple[torch.Tensor, bool]:
    """The frames before the first end-of-audio frame, and whether there was one.

    >>> c = torch.tensor([[5, 6, 7], [0, 0, 3], [1, 1, 1]])   # (T=3, K=3); frame 1 is eos
    >>> trim_at_eos(c)
    (tensor([[5, 6, 7]]), True)
    """
    is_eos = (codes[:, :-1] == eos_id).all(dim=-1)  # (T,)
    if not is_eos.any():
        return codes, False
    return codes[: int(is_eos.nonzero()[0, 0])], True


@torch.inference_mode()
def decode(codec, codes: torch.Tensor) -> np.ndarray:
    """Waveform (T * frame_size,) float32 for codes (T, K); a `VoxloraError` if it cannot be one."""
    n_frames = codes.shape[0]
    if n_frames == 0:
        raise VoxloraError(
            "the model ended the clip before any audio (an end-of-audio frame came first); "
            "try another --seed or --temperature"
        )
    size = int(codec.config.codebook_size)
    if int(codes.min()) < 0 or int(codes.max()) >= size:
        raise VoxloraError(
            f"the model produced audio codes outside the codec's 0..{size - 1}; not decoding them"
        )
    device = next(codec.parameters()).device
    try:
        audio = codec.decode(codes.T.unsqueeze(0).to(device)).audio_values  # (1, K, T) -> (1, 1, samples)
    except (IndexError, RuntimeError, ValueError) as e:
        raise VoxloraError(f"decoding {n_frames} audio frames failed ({type(e).__name__}: {e})") from None
    wave = audio[0, 0].float().cpu().numpy()
    expected = n_frames * int(codec.config.frame_size)
    if wave.shape != (expected,) or not np.isfinite(wave).all():
        raise VoxloraError(
            f"decoding {n_frames} audio frames gave {wave.size} samples (expected {expected}) "
            "or non-finite samples"
        )
    return wave
