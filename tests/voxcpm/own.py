"""VoxCPM's own training data path, for comparisons: its packer (loaded from its file, without the
``voxcpm.training`` package, whose __init__ needs the ``datasets`` 3 and argbind voxlora does not
install) and its collate's padding (audio and text padded with -100, as ``HFVoxCPMDataset``)."""

import functools
import importlib.util
from pathlib import Path

import torch


@functools.cache  # its module is executed once, not once a batch
def packer_class():
    import voxcpm

    path = Path(voxcpm.__file__).parent / "training" / "packers.py"
    spec = importlib.util.spec_from_file_location("voxcpm_own_packers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AudioFeatureProcessingPacker


def _pad(seqs, value):
    n = max(s.shape[0] for s in seqs)
    return torch.stack([torch.nn.functional.pad(s, (0, n - s.shape[0]), value=value) for s in seqs])


def own_batch(model, records) -> dict:
    """VoxCPM's packer's batch for records {text, samples (at the AudioVAE rate), ref_samples?}."""
    packer = packer_class()(
        dataset_cnt=1,
        max_len=model.config.max_length,
        patch_size=model.config.patch_size,
        feat_dim=model.config.feat_dim,
        audio_vae=model.audio_vae,
    )
    text = _pad([torch.tensor(model.text_tokenizer(r["text"]), dtype=torch.int32) for r in records], -100)
    audio = _pad([torch.as_tensor(r["samples"], dtype=torch.float32) for r in records], -100.0)
    refs = None
    if any("ref_samples" in r for r in records):
        refs = _pad(
            [torch.as_tensor(r.get("ref_samples", [-100.0]), dtype=torch.float32) for r in records], -100.0
        )
    return packer(
        audio_tokens=audio,
        text_tokens=text,
        task_ids=torch.ones(len(records), dtype=torch.int32),
        dataset_ids=torch.zeros(len(records), dtype=torch.int32),
        is_prompts=[False] * len(records),
        ref_audio_tokens=refs,
    )
