"""Which code trains and speaks each model family: family name -> its `base.ModelFamily`.

The trainer and the synth core find a model's family here (from its config.json, the same way the
file tools do: `voxlora.families.detect`) and then call only the `voxlora.families.base` interface.
Implementations are imported when first asked for, so ``--help`` and the file tools never import
a family's model code. A new family is one line in `IMPLEMENTATIONS`.

    >>> sorted(IMPLEMENTATIONS)
    ['csm', 'higgs-audio-v2', 'voxcpm']
"""

import importlib

from voxlora import families
from voxlora.errors import VoxloraError
from voxlora.families.base import ModelFamily

# family name (`Family.name`) -> "module:attribute" of its ModelFamily
IMPLEMENTATIONS = {
    "csm": "voxlora.families.csm.model:CSM_MODEL",
    "higgs-audio-v2": "voxlora.families.higgs_audio_v2.model:HIGGS_MODEL",
    "voxcpm": "voxlora.families.voxcpm.model:VOXCPM_MODEL",
}


def model_family(name: str) -> ModelFamily:
    """The `ModelFamily` of the family called ``name``; a one-line error when it cannot train or speak."""
    layout = families.get(name)
    where = IMPLEMENTATIONS.get(layout.name)
    if where is None:
        raise VoxloraError(
            f"{layout.name}: lora-train and synth do not support this family yet "
            f"(they do: {', '.join(IMPLEMENTATIONS)})"
        )
    module, attribute = where.split(":")
    return getattr(importlib.import_module(module), attribute)


def for_model(folder) -> ModelFamily:
    """The `ModelFamily` of the model folder ``folder`` (its config.json says which)."""
    return model_family(families.resolve(folder).name)
