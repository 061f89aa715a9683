"""Higgs Audio v2 training data: manifest records -> clips (cached codes) -> a store -> batches.

A clip is one conversation (`batch.conversation`): the target record's text and audio, and,
when there is one, a reference clip of the same voice before it. The reference comes from the
record (a ChatML record of ``mkmanifest --to chatml``, read by the manifest reader into
``"reference": {"audio", "text"}``), or, with ``--reference auto``, from another clip of the same
speaker in the manifest (`voxlora.chatml.pair_by_speaker`'s pairing: each clip the target once);
``--reference none`` trains plain text-to-speech. Codes of every clip, reference or target, come
from the codes cache (`codec.clip_codes`), so the audio tokenizer runs once per file.

`HiggsStore.batch` builds the processor's tensors (`batch.build_batch`) for the chosen clips;
the batch plan (length buckets, accumulation, DDP shares) is `voxlora.train.batches`'s, the same
as every family's.
"""

import logging
from dataclasses import dataclass

import torch

from voxlora.chatml import pair_by_speaker
from voxlora.errors import VoxloraError
from voxlora.families.base import PrepStats, check_budget
from voxlora.families.higgs_audio_v2 import batch as hb
from voxlora.families.higgs_audio_v2.codec import clip_codes

log = logging.getLogger("voxlora")


@dataclass
class HiggsClip:
    where: str  # "train.jsonl:3: clips/a.wav", for messages
    chat: str  # the conversation as the chat template renders it, one <|AUDIO_OUT|> per clip
    text_ids: list[int]  # its token ids (placeholders unexpanded): part of the data fingerprint
    codes: torch.Tensor  # (K, F) the target's codes
    reference: torch.Tensor | None  # (K, F_ref) the reference clip's codes, or None
    delay: int  # K - 1: frames the delay pattern adds (with the stream bos and eos: K + 1 per clip)

    @property
    def length(self) -> int:
        """Positions of the whole sequence: text, and per clip F + 2 + (K - 1) audio positions."""
        clips = [self.codes] + ([self.reference] if self.reference is not None else [])
        return len(self.text_ids) - len(clips) + sum(c.shape[1] + 2 + self.delay for c in clips)


@dataclass
class HiggsTrainBatch:
    """A `batch.HiggsBatch` with what the loop counts (targets of the two loss parts, frames)."""

    inputs: hb.HiggsBatch
    n_backbone: int  # audio targets: frames x (every codebook has as many)
    n_decoder: int  # text targets (1 when the model has no text head: its part is 0)
    frames: int  # target audio frames (throughput)

    def to(self, device) -> "HiggsTrainBatch":
        return HiggsTrainBatch(self.inputs.to(device), self.n_backbone, self.n_decoder, self.frames)


@dataclass
class HiggsStore:
    clips: list[HiggsClip]
    processor: object  # HiggsAudioV2Processor (its tokenizer and delay pattern; the codec is not used)
    text_head: bool
    frame_rate: float

    def __post_init__(self):
        self.lengths = torch.tensor([c.length for c in self.clips], dtype=torch.int64)
        self.frames = torch.tensor([c.codes.shape[1] for c in self.clips], dtype=torch.int64)
        self.names = [c.where for c in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def batch(self, clips: torch.Tensor, fraction: float = 1.0, seed: int = 0, epoch: int = 0):
        chosen = [self.clips[int(i)] for i in clips]
        samples = [(c.chat, ([c.reference] if c.reference is not None else []) + [c.codes]) for c in chosen]
        inputs = hb.build_batch(self.processor, samples, target_only=True)
        n_text = inputs.n_text if self.text_head else 1
        return HiggsTrainBatch(inputs, inputs.n_audio, max(1, n_text), sum(c.codes.shape[1] for c in chosen))


def pair_records(records: list[dict], reference: str) -> list[dict]:
    """Records with their ``reference`` clip: kept from the record, paired by speaker (auto), or dropped."""
    if reference == "none":
        return [{k: v for k, v in r.items() if k != "reference"} for r in records]
    if reference != "auto" or any("reference" in r for r in records):
        return records
    unpaired: list = []
    paired = []
    for chat in pair_by_speaker(records, unpaired):
        ref, target = chat["misc"]["reference"], chat["misc"]["target"]
        paired.append({**target, "reference": {"audio": ref["audio"], "text": ref["text"]}})
    if unpaired:
        log.warning(
            "--reference auto: %d speaker(s) with a single clip train without a reference", len(unpaired)
        )
        paired += [{**r} for r in records if r.get("speaker") in set(unpaired) and r not in paired]
    return paired


def prepare_clips(records, processor, cache, reference: str = "auto", progress=None):
    """Records -> (clips, PrepStats); every audio file's codes from ``cache`` or encoded once."""
    stats = PrepStats()
    known: dict[str, torch.Tensor] = {}  # audio path -> codes: a reference of several clips is read once
    clips = []
    for record in pair_records(list(records), reference):
        where = record["where"]
        ref = record.get("reference")
        codes = {}
        for role, clip in (("reference", ref), ("target", record)):
            if clip is None:
                continue
            if clip["audio"] in known:
                codes[role] = known[clip["audio"]]
                continue
            try:
                codes[role], cached = clip_codes(processor, cache, clip["audio"])
            except OSError as e:
                raise VoxloraError(f"{where}: cannot read the {role} audio ({e.strerror or e})") from None
            except VoxloraError as e:
                raise VoxloraError(f"{where}: {role}: {e}") from None
            known[clip["audio"]] = codes[role]
            stats.encoded += not cached
            stats.cached += cached
        chat = hb.prompt_text(processor, hb.conversation(record["text"], ref["text"] if ref else None))
        ids = processor.tokenizer(chat).input_ids  # as `batch.build_batch` (and the processor) tokenize it
        K = int(codes["target"].shape[0])
        clips.append(HiggsClip(where, chat, ids, codes["target"], codes.get("reference"), K - 1))
        stats.clips += 1
        stats.frames += int(codes["target"].shape[1])
        if progress is not None:
            progress(1)
    return clips, stats


def check_clip(clip: HiggsClip, max_positions: int, max_batch_frames: int | None = None) -> None:
    """Refuse a conversation the model cannot take whole (never cut silently)."""
    if clip.length > max_positions:
        raise VoxloraError(
            f"{clip.where}: too long for the model: {clip.length} positions (text, reference and target audio), "
            f"the model's context is {max_positions}; split or drop the clip"
        )
    check_budget(clip, max_batch_frames)
