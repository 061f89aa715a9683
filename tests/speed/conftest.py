"""The tiny CSM's clips, encoded once for the module, and a model + store + config per test."""

import pytest
from voxlora.backends.torch.codec import codec_identity
from voxlora.codes_cache import CodesCache
from voxlora.families.csm.sequences import build_store, prepare_clips
from voxlora.families.csm.train_torch import make_trainable
from voxlora.lora_options import LoraSettings
from voxlora.models.csm import load_csm
from voxlora.peft_bridge import new_adapter_for
from voxlora.train.config import TrainConfig, resolve
from voxlora.train.recipe import read_records

from tests.trainkit import make_manifest


@pytest.fixture(scope="module")
def clips(tiny_csm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("speed-data")
    bundle = load_csm(tiny_csm)
    records = read_records(str(make_manifest(folder, n=6)))
    return prepare_clips(records, bundle, CodesCache(folder / "cache", codec_identity(bundle.codec)))[0]


@pytest.fixture
def setup(tiny_csm, clips):
    def make(attention: str | None = None, device: str = "cpu", **overrides):
        bundle = load_csm(tiny_csm, device=device, **({"attention": attention} if attention else {}))
        config = resolve(
            TrainConfig(
                **{"out": "unused", "warmup_steps": 0, "batch_size": 2, "device": device, **overrides}
            )
        )
        model, _ = make_trainable(bundle, new_adapter_for(tiny_csm, LoraSettings(), seed=0), config)
        return model, build_store(clips, bundle.config, 12.5), config

    return make
