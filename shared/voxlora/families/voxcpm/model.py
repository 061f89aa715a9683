"""VoxCPM as a `voxlora.families.base.ModelFamily`: torch only (its own model code is torch)."""

from voxlora.errors import VoxloraError
from voxlora.families.voxcpm import FAMILY


class VoxcpmModel:
    layout = FAMILY

    def load_for_training(self, config, source):
        if config.backend != "torch":
            raise VoxloraError(f"--backend {config.backend}: VoxCPM trains on torch only")
        from voxlora.families.voxcpm.train_torch import TorchTraining

        return TorchTraining(config, source)

    def load_for_synthesis(self, config):
        if config.resolved_backend() != "torch":
            raise VoxloraError("VoxCPM speaks on torch only (--backend torch)")
        from voxlora.families.voxcpm.synth_torch import TorchSynth

        return TorchSynth(config)


VOXCPM_MODEL = VoxcpmModel()
