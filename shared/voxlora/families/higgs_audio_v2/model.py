"""Higgs Audio v2 as a `voxlora.families.base.ModelFamily`: torch only (transformers + peft).

Training: `train_torch.HiggsTraining`; speaking: `speak.HiggsSynth`. MLX has no Higgs model, so
``--backend mlx`` is one clear error.
"""

from voxlora.errors import VoxloraError
from voxlora.families.higgs_audio_v2 import FAMILY


class HiggsModel:
    layout = FAMILY

    def load_for_training(self, config, source):
        if config.backend == "mlx":
            raise VoxloraError("Higgs Audio v2 trains on torch only: use --backend torch")
        from voxlora.families.higgs_audio_v2.train_torch import HiggsTraining

        return HiggsTraining(config, source)

    def load_for_synthesis(self, config):
        if config.resolved_backend() == "mlx":
            raise VoxloraError("Higgs Audio v2 speaks on torch only: use --backend torch")
        from voxlora.families.higgs_audio_v2.speak import HiggsSynth

        return HiggsSynth(config)


HIGGS_MODEL = HiggsModel()
