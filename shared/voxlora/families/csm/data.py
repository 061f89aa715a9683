"""CSM's data side, the same on both backends: torch Mimi codes (cached) and CSM sequences.

`CsmData` is mixed into `train_torch.TorchTraining` and `train_mlx.MlxTraining`: each sets
``data`` (what `sequences.prepare_clips` reads: ``processor``, ``codec`` (torch Mimi), ``config``,
``sample_rate``), ``device``, ``frame_rate`` and ``max_positions``; this fills in the data members
of `voxlora.families.base.TrainModel`.
"""

from functools import cached_property

from voxlora.backends.torch.codec import codec_identity
from voxlora.families.csm import sequences


class CsmData:
    data: object
    device: str
    frame_rate: float
    max_positions: int

    @cached_property
    def codec_identity(self) -> str:
        return codec_identity(self.data.codec)

    def prepare_clips(self, records, cache, default_speaker: int = 0, progress=None):
        return sequences.prepare_clips(records, self.data, cache, default_speaker, self.device, progress)

    def check_clip(self, clip, max_batch_frames: int | None = None) -> None:
        sequences.check_lengths([clip], self.max_positions, max_batch_frames)

    def build_store(self, clips):
        return sequences.build_store(clips, self.data.config, self.frame_rate)
