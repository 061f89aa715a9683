"""VoxCPM clips for lora-train: text ids and cached AudioVAE latents, laid out once, batched per step.

A `Clip` holds its latents as ``codes`` (D, F): D latent channels, F latent frames (a whole number
of patches), float32 from `latents.LatentCache` (beside the Mimi codes in ``--cache-dir``, keyed by
the AudioVAE's identity). A record's ``ref_audio`` (VoxCPM's prompt clip) is encoded the same way.
`Store.batch` packs clips exactly as VoxCPM's packer does (`batch.collate`), so the loss is
VoxCPM's own; ``lengths`` are packed sequence lengths in patches, which ``--max-batch-frames``
(VoxCPM's ``max_batch_tokens``) budgets.
"""

from dataclasses import dataclass

import torch

from voxlora.errors import VoxloraError
from voxlora.families.base import PrepStats
from voxlora.families.voxcpm import batch as packing
from voxlora.families.voxcpm.draws import clip_seeds, lengths_of
from voxlora.families.voxcpm.latents import LatentCache, encode
from voxlora.families.voxcpm.train import losses


@dataclass
class Clip:
    where: str
    text_ids: list[int]
    codes: torch.Tensor  # (D, F) float32 latents
    ref: torch.Tensor | None  # (D, F_ref) latents of the prompt clip, or None
    patch_size: int
    dataset_id: int = 0

    def patches(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.T.reshape(-1, self.patch_size, latents.shape[0])  # (T, P, D)

    @property
    def length(self) -> int:
        n_ref = 0 if self.ref is None else self.ref.shape[1] // self.patch_size
        return packing.sequence_length(len(self.text_ids), self.codes.shape[1] // self.patch_size, n_ref)


@dataclass
class VoxcpmBatch:
    tensors: dict  # batch.collate's tracks, (B, S, ...)
    n_backbone: int  # diffusion targets: loss patches x patch size
    n_decoder: int  # stop targets: loss patches
    frames: int  # latent frames in the batch
    seeds: tuple[int, ...] = ()  # each clip's diffusion draws (`draws.clip_seeds`)
    lengths: tuple[int, ...] = ()  # each clip's packed length (read here, not from the device)

    def to(self, device) -> "VoxcpmBatch":
        moved = {k: v.to(device, non_blocking=True) for k, v in self.tensors.items()}
        return VoxcpmBatch(moved, self.n_backbone, self.n_decoder, self.frames, self.seeds, self.lengths)


@dataclass
class Store:
    clips: list[Clip]
    lengths: torch.Tensor  # (N,) packed sequence lengths
    frames: torch.Tensor  # (N,) latent frames
    frame_rate: float
    names: list[str]

    def __len__(self) -> int:
        return len(self.clips)

    def batch(self, indices, fraction=1.0, seed=0, epoch=0) -> VoxcpmBatch:
        items = []
        for i in torch.as_tensor(indices).tolist():
            c = self.clips[i]
            item = {"text_ids": c.text_ids, "latents": c.patches(c.codes)}
            if c.ref is not None:
                item["ref_latents"] = c.patches(c.ref)
            items.append(item)
        tensors = packing.collate(items)
        n = int(tensors["loss_mask"].sum())
        patch = self.clips[0].patch_size
        frames = int(self.frames[torch.as_tensor(indices)].sum())
        seeds, lengths = clip_seeds(seed, epoch, indices), tuple(lengths_of(tensors))
        return VoxcpmBatch(tensors, n * patch, max(n, 1), frames, seeds, lengths)


def build_store(clips: list[Clip], frame_rate: float) -> Store:
    return Store(
        clips=clips,
        lengths=torch.tensor([c.length for c in clips], dtype=torch.int64),
        frames=torch.tensor([c.codes.shape[1] for c in clips], dtype=torch.int64),
        frame_rate=frame_rate,
        names=[c.where for c in clips],
    )


def voxcpm_loss(model, batch: VoxcpmBatch):
    """(diffusion, stop) loss *sums* of VoxCPM's own training forward on ``batch``, each clip's
    diffusion draws from its own seed (`draws`), so a clip counts the same in any micro-batch."""
    _, parts = losses(model, batch.tensors, seeds=batch.seeds, lengths=batch.lengths or None)
    return parts["loss/diff"] * batch.n_backbone, parts["loss/stop"] * batch.n_decoder


def _latents(vae, cache: LatentCache, path, patch_size: int, where: str, stats) -> torch.Tensor:
    from voxlora import audio
    from voxlora.codes_cache import file_sha256

    try:
        sha = file_sha256(path)
    except OSError as e:
        raise VoxloraError(f"{where}: cannot read the audio ({e.strerror or e})") from None
    got = cache.get(sha, patch_size, int(vae.latent_dim))
    if got is not None:
        stats.cached += 1
        return got
    try:
        x, sr = audio.load(path)
        x = audio.resample(x, sr, int(vae.sample_rate))  # clips at another rate are resampled
    except VoxloraError as e:
        raise VoxloraError(f"{where}: {e}") from None
    if len(x) == 0:
        raise VoxloraError(f"{where}: empty audio")
    stats.encoded += 1
    return cache.put(sha, encode(vae, x, patch_size))


def prepare_clips(records, model, cache: LatentCache, progress=None):
    """Records (``audio``, ``text``, optional ``ref_audio``, ``dataset_id``, ``where``) -> (clips, stats)."""
    vae, patch = model.audio_vae, int(model.config.patch_size)
    clips, stats = [], PrepStats()
    for record in records:
        where = record["where"]
        latents = _latents(vae, cache, record["audio"], patch, where, stats)  # (T, P, D)
        ref = record.get("ref_audio")
        ref_latents = _latents(vae, cache, ref, patch, f"{where} (ref_audio)", stats) if ref else None

        def flat(t):
            return None if t is None else t.reshape(-1, t.shape[-1]).T.contiguous()  # (D, T*P)

        clips.append(
            Clip(
                where=where,
                text_ids=list(model.text_tokenizer(record["text"])),
                codes=flat(latents),
                ref=flat(ref_latents),
                patch_size=patch,
                dataset_id=int(record.get("dataset_id") or 0),
            )
        )
        stats.clips += 1
        stats.frames += latents.shape[0] * patch
        if progress is not None:
            progress(1)
    return clips, stats
