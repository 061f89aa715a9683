"""Sesame CSM as a `voxlora.families.base.ModelFamily`: which backend's classes load it.

torch: `train_torch.TorchTraining` and `synth_torch.TorchSynth` (transformers + peft); MLX:
`train_mlx.MlxTraining` and `synth_mlx.MlxSynth` (mlx-audio's sesame model, `voxlora.backends.mlx`).
Both train on the same data (`data.CsmData`: torch Mimi codes, CSM sequences), so the codes cache is
shared and an adapter trained on one backend loads on the other.
"""

from voxlora.backends import require_mlx
from voxlora.families.csm import FAMILY


class CsmModel:
    """Loads CSM for training or synthesis on the backend its config names."""

    layout = FAMILY
    compiles = True  # --compile (torch): bucketed batches, compiled backbone and depth decoder

    def load_for_training(self, config, source):
        if config.backend == "mlx":
            require_mlx()
            from voxlora.families.csm.train_mlx import MlxTraining

            return MlxTraining(config, source)
        from voxlora.families.csm.train_torch import TorchTraining

        return TorchTraining(config, source)

    def load_for_synthesis(self, config):
        if config.resolved_backend() == "mlx":
            require_mlx()
            from voxlora.families.csm.synth_mlx import MlxSynth

            return MlxSynth(config)
        from voxlora.families.csm.synth_torch import TorchSynth

        return TorchSynth(config)


CSM_MODEL = CsmModel()
