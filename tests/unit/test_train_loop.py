"""The trainer on the tiny CSM: it learns, it touches only what it trains, accumulation is exact."""

import dataclasses
import json

import pytest
import torch
from voxlora.backends.torch.codec import codec_identity
from voxlora.backends.torch.train import make_optimizer
from voxlora.codes_cache import CodesCache
from voxlora.errors import VoxloraError
from voxlora.families.csm.sequences import build_store, prepare_clips
from voxlora.families.csm.train_torch import make_trainable
from voxlora.lora_options import LoraSettings
from voxlora.models.csm import load_csm
from voxlora.peft_bridge import new_adapter_for
from voxlora.train import checkpoint
from voxlora.train.config import TrainConfig, resolve
from voxlora.train.loop import TrainState, train
from voxlora.train.recipe import read_records

from tests.trainkit import make_manifest, tensor_hashes  # noqa: F401


@pytest.fixture(scope="module")
def data(tiny_csm, tmp_path_factory):  # noqa: F811
    """8 clips' codes, computed once for the module."""
    folder = tmp_path_factory.mktemp("train-data")
    bundle = load_csm(tiny_csm)
    records = read_records(str(make_manifest(folder, n=8)))
    clips, _ = prepare_clips(records, bundle, CodesCache(folder / "cache", codec_identity(bundle.codec)))
    return clips


def setup(tiny_csm, data, settings=None, **overrides):  # noqa: F811
    bundle = load_csm(tiny_csm)
    config = resolve(TrainConfig(out="unused", log_every=1, warmup_steps=0, **overrides))
    adapter = None if config.full else new_adapter_for(tiny_csm, settings or LoraSettings(), seed=0)
    model, names = make_trainable(bundle, adapter, config)
    return model, build_store(data, bundle.config, 12.5), config, names


def test_it_learns_and_changes_only_the_adapter(tiny_csm, data):  # noqa: F811
    settings = LoraSettings(rank=16, alpha=16, targets=("all-linear", "lm_head", "projection"))
    model, store, config, names = setup(
        tiny_csm, data, settings, max_steps=120, batch_size=8, lr=3e-3, lr_schedule="constant"
    )
    before = tensor_hashes(model)
    records = list(train(model, store, config))
    assert records[0]["step"] == 1 and records[-1]["step"] == 120
    assert records[-1]["loss"] < 0.5 * records[0]["loss"], (records[0]["loss"], records[-1]["loss"])
    after = tensor_hashes(model)
    changed = {n for n in before if before[n] != after[n]}
    assert changed and all(".lora_B." in n or ".lora_A." in n for n in changed)
    assert all(n.removeprefix("base_model.model.") in after or n in after for n in names)
    for key in ("epoch", "lr", "grad_norm", "backbone_loss", "decoder_loss", "frames_per_s", "audio_s_per_s"):
        assert key in records[-1]


def test_train_embeddings_trains_the_embeddings_too(tiny_csm, data):  # noqa: F811
    model, store, config, names = setup(tiny_csm, data, LoraSettings(train_embeddings=True), max_steps=2)
    before = tensor_hashes(model)
    list(train(model, store, config))
    after = tensor_hashes(model)
    changed = {n for n in before if before[n] != after[n]}
    embeddings = {n for n in changed if ".modules_to_save." in n}
    assert {n.split(".modules_to_save.")[0] for n in embeddings} == {
        "base_model.model.embed_text_tokens",
        "base_model.model.backbone_model.embed_tokens.embed_audio_tokens",
    }
    assert all(".lora_" in n or ".modules_to_save." in n for n in changed)  # the base tables stay


def test_full_trains_everything_but_the_codec(tiny_csm, data):  # noqa: F811
    model, store, config, names = setup(tiny_csm, data, full=True, max_steps=2, lr=1e-3)
    before = tensor_hashes(model)
    list(train(model, store, config))
    after = tensor_hashes(model)
    changed = {n for n in before if before[n] != after[n]}
    assert not any(n.startswith("codec_model.") for n in changed)
    assert "lm_head.weight" in changed and "depth_decoder.codebooks_head.weight" in changed
    assert "backbone_model.layers.0.self_attn.q_proj.weight" in changed
    assert not any(n.startswith("codec_model.") for n in names) and len(names) > 40


def test_batch_of_four_equals_two_accumulated_batches_of_two(tiny_csm, data):  # noqa: F811
    runs = {}
    for batch_size, grad_accum in ((4, 1), (2, 2)):
        model, store, config, _ = setup(
            tiny_csm, data, LoraSettings(targets=("all-linear",)), max_steps=3,
            batch_size=batch_size, grad_accum=grad_accum, decoder_frame_fraction=0.25,
        )  # fmt: skip
        records = list(train(model, store, config))
        runs[(batch_size, grad_accum)] = (
            records,
            {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad},
        )
    (rec_a, params_a), (rec_b, params_b) = runs.values()
    for a, b in zip(rec_a, rec_b, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    for name, p in params_a.items():
        assert torch.allclose(p, params_b[name], atol=1e-6), name


def test_loss_and_batches_can_be_swapped(tiny_csm, data):  # noqa: F811
    model, store, config, _ = setup(tiny_csm, data, max_steps=3)
    seen = []

    def fake_batches(store, config, epoch, position):
        from voxlora.families.csm.batches import make_batch

        while True:
            yield epoch, position, [make_batch(store, [0])]
            position += 1

    def fake_loss(model, batch):
        seen.append(batch.clips.tolist())
        w = next(p for p in model.parameters() if p.requires_grad)
        return (w**2).sum() * batch.n_backbone, torch.zeros(()) * batch.n_decoder

    records = list(train(model, store, config, loss=fake_loss, iterate_batches=fake_batches))
    assert seen == [[0]] * 3 and [r["step"] for r in records] == [1, 2, 3]


def test_checkpoint_keeps_the_optimizer_and_rng(tiny_csm, data, tmp_path):  # noqa: F811
    model, store, config, names = setup(tiny_csm, data, max_steps=2)
    saved = {}

    def save(state, optimizer, scaler):
        saved["opt"] = optimizer.state_dict()
        checkpoint.write_checkpoint(
            checkpoint.step_dir(tmp_path, state.step), state=state, optimizer=optimizer, scaler=scaler,
            config=config.to_dict(), names=names, write_weights=lambda folder: None,
        )  # fmt: skip

    config = dataclasses.replace(config, save_every=1)
    list(train(model, store, config, save=save))
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == ["step_0000001", "step_0000002"]
    meta, opt_state, rng_state = checkpoint.read_checkpoint(tmp_path / "step_0000002")
    assert (meta["step"], meta["trained"], meta["config"]["max_steps"]) == (2, names, 2)
    assert TrainState(meta["step"], meta["epoch"], meta["position"]) == TrainState(
        2, 0, 2
    )  # 2 steps of 4 clips: epoch 0 done
    fresh = make_optimizer([p for p in model.parameters() if p.requires_grad], config)
    fresh.load_state_dict(opt_state)
    for index, entries in saved["opt"]["state"].items():
        for key, value in entries.items():
            assert torch.equal(fresh.state_dict()["state"][index][key], value)
    assert rng_state["rng.torch"].dtype == torch.uint8 and rng_state["rng.torch"].numel() > 0
    assert [p.name for p in checkpoint.prune(tmp_path, keep_last=1)] == ["step_0000001"]
    assert [p.name for p in checkpoint.checkpoints(tmp_path)] == ["step_0000002"]


def test_kill_and_resume_equals_an_uninterrupted_run(tiny_csm, tmp_path):  # noqa: F811
    from safetensors.torch import load_file
    from voxlora.train.recipe import run

    manifest = make_manifest(tmp_path / "data", n=6)
    settings = LoraSettings(targets=("all-linear",), dropout=0.1)  # dropout: the RNG state matters

    def config(out, **kw):
        return TrainConfig(model=str(tiny_csm), manifest=str(manifest), out=str(tmp_path / out), max_steps=6,
                           batch_size=2, save_every=2, log_every=1, **kw)  # fmt: skip

    whole = [r for r in run(config("whole"), settings) if "loss" in r]
    killed = run(config("killed"), settings)
    for record in killed:  # the process dies while step 5 runs: the step-4 checkpoint is the last
        if record.get("step") == 4:
            break
    killed.close()
    assert not (tmp_path / "killed" / "adapter_model.safetensors").exists()
    resumed = [r for r in run(config("killed", resume=True), settings) if "loss" in r]
    assert [r["step"] for r in resumed] == [5, 6]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole[4:]]
    a = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    b = load_file(tmp_path / "killed" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise
    lines = [json.loads(x) for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(VoxloraError, match="differs from the checkpoint's: lr 0.001"):
        list(run(config("killed", resume=True, lr=1e-3), settings))
    with pytest.raises(VoxloraError, match="holds checkpoints of an earlier run"):
        list(run(config("killed"), settings))
