"""From manifest records to CSM training sequences, all prepared before the first step.

One clip becomes one sequence of positions, exactly as `CsmProcessor` lays it out (one chat turn):

    <bos> [ s p k ] t e x t <eos>  <|AUDIO|> x F  <|audio_eos|>
    text positions (TEXT)          audio frames   the end frame (EOS, all codebooks = codebook_eos)

Each position carries a text token id (audio positions keep CSM's placeholder ids) and K Mimi codes
(zeros on text positions). `SequenceStore` concatenates every clip's positions into flat tensors
with offsets, so a batch is one gather (`batches.py`), never a loop over samples.

Audio is read, resampled to the codec's rate and encoded only when the codes cache has no entry.
"""

import logging
import math
from dataclasses import dataclass

import torch

from voxlora.backends.torch.codec import encode
from voxlora.codes_cache import CodesCache, file_sha256
from voxlora.errors import VoxloraError
from voxlora.families.base import PrepStats, check_budget
from voxlora.families.csm.batches import EOS, FRAME, PAD, TEXT, SequenceStore  # noqa: F401

log = logging.getLogger("voxlora")


@dataclass
class Clip:
    where: str  # "train.jsonl:3: clips/a.wav", for messages
    text_ids: list[int]  # <bos>[speaker]text<eos>
    codes: torch.Tensor  # (K, F) int16 Mimi codes

    @property
    def length(self) -> int:
        """Positions in the sequence: text, F frames, the end frame."""
        return len(self.text_ids) + self.codes.shape[1] + 1


def text_ids(processor, text: str, speaker) -> list[int]:
    """The token ids of one CSM turn's text part, rendered by the model's own chat template.

    >>> text_ids(bundle.processor, "hi", 0)   # doctest: +SKIP
    [<bos>, '[', '0', ']', 'h', 'i', <eos>]
    """
    turn = [{"role": str(speaker), "content": [{"type": "text", "text": text}]}]
    rendered = processor.apply_chat_template(turn, tokenize=False)
    return processor.tokenizer(rendered, add_special_tokens=False).input_ids


def load_samples(path, sample_rate: int):
    """Mono float32 samples of an audio file at ``sample_rate``."""
    from voxlora import audio

    x, sr = audio.load(path)
    return audio.resample(x, sr, sample_rate)


def prepare_clips(records, bundle, cache: CodesCache, default_speaker: int = 0, device="cpu", progress=None):
    """Records (dicts with ``audio`` path, ``text``, optional ``speaker``, ``where``) -> (clips, stats).

    Every audio file is hashed; its codes come from ``cache`` or, on a miss, from the codec (once).
    """
    codec_cfg = bundle.codec.config
    k, size = int(bundle.config.num_codebooks), int(codec_cfg.codebook_size)
    clips, stats = [], PrepStats()
    for record in records:
        where = record["where"]
        try:
            sha = file_sha256(record["audio"])
        except OSError as e:
            raise VoxloraError(f"{where}: cannot read the audio ({e.strerror or e})") from None
        codes = cache.get(sha, k, size)
        if codes is None:
            try:
                samples = load_samples(record["audio"], bundle.sample_rate)
            except VoxloraError as e:
                raise VoxloraError(f"{where}: {e}") from None
            if len(samples) == 0:
                raise VoxloraError(f"{where}: empty audio")
            codes = cache.put(sha, encode(bundle.codec, samples, device)[:k])
            stats.encoded += 1
        else:
            stats.cached += 1
        speaker = record.get("speaker")
        speaker = default_speaker if speaker is None or speaker == "" else speaker
        clips.append(
            Clip(where=where, text_ids=text_ids(bundle.processor, record["text"], speaker), codes=codes)
        )
        stats.clips += 1
        stats.frames += codes.shape[1]
        if progress is not None:
            progress(1)
    return clips, stats


def check_lengths(clips: list[Clip], max_positions: int, max_batch_frames: int | None = None) -> None:
    """Refuse clips the model cannot take whole (never cut silently)."""
    for clip in clips:
        if clip.length > max_positions:
            raise VoxloraError(
                f"{clip.where}: too long for the model: {clip.length} positions "
                f"({clip.codes.shape[1]} audio frames + {len(clip.text_ids) + 1} text/end), "
                f"the model's context is {max_positions}; split or drop the clip"
            )
        check_budget(clip, max_batch_frames)


def build_store(clips: list[Clip], config, frame_rate: float) -> SequenceStore:
    """Lay every clip out as CSM positions; ``config`` is the CsmConfig (token ids, codebooks)."""
    k = int(config.num_codebooks)
    tokens, codes, kinds, lengths, frames = [], [], [], [], []
    for clip in clips:
        n_text, n_frames = len(clip.text_ids), clip.codes.shape[1]
        frame_codes = clip.codes[:k].T.to(torch.int64)  # (F, K)
        tokens.append(
            torch.tensor(
                clip.text_ids + [config.audio_token_id] * n_frames + [config.audio_eos_token_id],
                dtype=torch.int64,
            )
        )
        codes.append(
            torch.cat(
                [
                    torch.zeros(n_text, k, dtype=torch.int64),
                    frame_codes,
                    torch.full((1, k), int(config.codebook_eos_token_id), dtype=torch.int64),
                ]
            )
        )
        kinds.append(torch.tensor([TEXT] * n_text + [FRAME] * n_frames + [EOS], dtype=torch.int8))
        lengths.append(clip.length)
        frames.append(n_frames)
    lengths = torch.tensor(lengths, dtype=torch.int64)
    return SequenceStore(
        tokens=torch.cat(tokens),
        codes=torch.cat(codes),
        kind=torch.cat(kinds),
        offsets=torch.cumsum(lengths, 0) - lengths,
        lengths=lengths,
        frames=torch.tensor(frames, dtype=torch.int64),
        frame_rate=float(frame_rate),
        names=[c.where for c in clips],
    )


def decoder_frames(frames: int, fraction: float) -> int:
    """How many of a clip's audio frames the depth decoder learns on (the end frame comes on top).

    The same count as `CsmProcessor` keeps with ``depth_decoder_labels_ratio``.

    >>> decoder_frames(100, 1 / 16), decoder_frames(3, 1 / 16), decoder_frames(7, 1.0)
    (7, 1, 7)
    """
    return frames - math.floor(frames * (1 - fraction) + 1e-9)
