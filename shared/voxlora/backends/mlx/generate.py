"""Sample CSM audio codes on MLX, frame by frame, as transformers' CSM ``generate`` does.

Per frame: the backbone's last state gives codebook 0 (``codebook0_head``); the depth decoder,
started afresh from that state and fed each sampled code, gives codebooks 1..K-1, each from its own
head; the frame's summed embeddings are the backbone's next input. Both transformers keep a KV
cache (mlx-audio's ``make_prompt_cache``). Ids the codec cannot decode (>= its codebook size) are
never sampled, as in `voxlora.families.csm.sample`; a frame of all ``codebook_eos`` (the last codebook
aside) ends the clip and is returned, for `synth.sample.trim_at_eos` to cut.

The prompt is the processor's ``input_ids`` for the text turns (`voxlora.families.csm.prompt.build_inputs`); turns
with audio come in as their Mimi codes (`mlx_mimi.encode`) on the audio positions.
"""

import mlx.core as mx
import numpy as np
from mlx_audio.lm.models.cache import make_prompt_cache

from voxlora.backends.mlx.loss import _audio_rows, decoder_table


def _sample(logits: mx.array, temperature: float, top_k: int, banned: int, key) -> mx.array:
    """(1, V) logits -> (1,) id; ids >= ``banned`` never chosen; temperature 0 is argmax."""
    logits = logits.astype(mx.float32)
    logits = mx.where(mx.arange(logits.shape[-1]) >= banned, -mx.inf, logits)
    if temperature == 0:
        return mx.argmax(logits, axis=-1)
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = mx.sort(logits, axis=-1)[:, -top_k][:, None]
        logits = mx.where(logits < kth, -mx.inf, logits)
    return mx.random.categorical(logits, key=key)


def generate_codes(
    model,
    tokens: np.ndarray,
    max_frames: int,
    codebook_size: int,
    temperature: float = 0.9,
    top_k: int = 50,
    seed: int = 0,
    codes: np.ndarray | None = None,
    audio: np.ndarray | None = None,
    eos_id: int = 0,
) -> np.ndarray:
    """Audio codes (T, K) after the prompt ``tokens`` (P,), at most ``max_frames`` (the eos frame included).

    ``codes`` (P, K) and ``audio`` (P,) bool give prompt positions that are audio frames (context).
    """
    k = int(model.args.audio_num_codebooks)
    p = len(tokens)
    codes = np.zeros((p, k), np.int32) if codes is None else np.asarray(codes, np.int32)
    audio = np.zeros(p, bool) if audio is None else np.asarray(audio, bool)
    key = mx.random.key(seed)
    text = model.text_embeddings(mx.array(np.asarray(tokens, np.int32))[None])  # (1, P, H)
    audio_x = _audio_rows(model, model.audio_embeddings, mx.array(codes)[None]).sum(axis=2)  # (1, P, H)
    x = mx.where(mx.array(audio)[None, :, None], audio_x, text)
    cache = make_prompt_cache(model.backbone)
    frames = []
    for _ in range(max_frames):
        last = model.backbone(x, cache=cache)[:, -1]  # (1, H)
        key, sub = mx.random.split(key)
        frame = [_sample(model.codebook0_head(last), temperature, top_k, codebook_size, sub)]  # [(1,)]
        dcache = make_prompt_cache(model.decoder)
        dx = mx.concatenate(
            [last[:, None], _audio_rows(model, decoder_table(model), frame[0][:, None])], axis=1
        )
        for i in range(1, k):
            hd = model.decoder(model.projection(dx), cache=dcache)[:, -1]  # (1, Hd)
            key, sub = mx.random.split(key)
            frame.append(_sample(hd @ model.audio_head[i - 1], temperature, top_k, codebook_size, sub))
            dx = _audio_rows(model, decoder_table(model), frame[-1][:, None], first=i)  # (1, 1, H)
        frame = mx.stack(frame, axis=-1)  # (1, K)
        mx.eval(frame)
        frames.append(np.array(frame[0]))
        if (frames[-1][:-1] == eos_id).all():
            break
        x = _audio_rows(model, model.audio_embeddings, frame[:, None]).sum(axis=2)  # (1, 1, H)
    return np.stack(frames).astype(np.int64) if frames else np.zeros((0, k), np.int64)
