"""Each DDP rank's own dropout stream, every rank's RNG in checkpoints, CUDA states in numeric order."""

import shutil
import subprocess

import pytest
import torch
from safetensors.torch import load_file
from voxlora.backends.torch import rng
from voxlora.train import checkpoint, rank_rng

from tests.distributed.test_ddp import LORA_TRAIN, args, env
from tests.trainkit import make_manifest


def test_cuda_states_are_restored_in_numeric_order(monkeypatch):
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "set_rng_state_all", lambda states: restored.extend(int(s[0]) for s in states)
    )
    tensors = {"rng.torch": torch.get_rng_state()}
    tensors |= {f"rng.cuda.{i}": torch.tensor([i], dtype=torch.uint8) for i in range(12)}
    rng.restore_rng(dict(sorted(tensors.items())))  # lexical: cuda.0, cuda.1, cuda.10, cuda.11, cuda.2
    assert restored == list(range(12))


def test_each_rank_finds_its_own_state():
    saved = {"rng.torch": torch.tensor([0]), "rng.cuda.0": torch.tensor([1]),
             "rng.rank1.torch": torch.tensor([2]), "rng.rank1.cuda.0": torch.tensor([3])}  # fmt: skip
    assert rank_rng.for_rank(saved, 0).keys() == {"rng.torch", "rng.cuda.0"}
    assert {k: int(v) for k, v in rank_rng.for_rank(saved, 1).items()} == {"rng.torch": 2, "rng.cuda.0": 3}
    assert rank_rng.for_rank(saved, 2) is None
    assert rank_rng.rank_seed(5, 0) == 5 and rank_rng.rank_seed(5, 1) not in (5, rank_rng.rank_seed(5, 2))


@pytest.mark.skipif(not LORA_TRAIN.exists(), reason="needs the lora-train console script")
def test_a_resumed_ddp_run_with_dropout_is_bitwise_the_uninterrupted_one(tiny_csm, tmp_path):
    corpus = make_manifest(tmp_path / "data", n=8)
    out = tmp_path / "run"
    job = args(tiny_csm, corpus, out, "--max-steps", 4, "--batch-size", 2, "--dropout", 0.3, "--save-every", 2,
               "--nproc", 2, "--cache-dir", tmp_path / "codes")  # fmt: skip
    whole = subprocess.run([str(LORA_TRAIN), *job], capture_output=True, text=True, env=env(), timeout=240)
    assert whole.returncode == 0, whole.stderr
    state = load_file(out / "step_0000002" / checkpoint.STATE_TENSORS)
    assert not state["rng.torch"].equal(state["rng.rank1.torch"])  # two streams, saved both

    resumed = tmp_path / "resumed"  # the same run, killed after its step-2 checkpoint
    resumed.mkdir()
    shutil.copytree(out / "step_0000002", resumed / "step_0000002")
    for name in ("metrics.jsonl", "voxlora-train.json", ".voxlora-output.json"):  # the run's own files
        if (out / name).exists():
            shutil.copy(out / name, resumed / name)
    job[job.index(str(out))] = str(resumed)
    again = subprocess.run(
        [str(LORA_TRAIN), *job, "--resume"], capture_output=True, text=True, env=env(), timeout=240
    )
    assert again.returncode == 0, again.stderr
    a, b = (load_file(d / "adapter_model.safetensors") for d in (out, resumed))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
