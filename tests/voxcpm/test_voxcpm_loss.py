"""voxlora's VoxCPM batches from cached latents give VoxCPM's own losses on its own packer's batch."""

import math

import pytest
import torch

from tests.voxcpm.own import own_batch


def clip(seconds, freq, sr=16000):
    t = torch.arange(int(seconds * sr)) / sr
    return 0.3 * torch.sin(2 * math.pi * freq * t) + 0.01 * torch.cos(7 * t * freq)


RECORDS = [
    {"text": "Hello there", "samples": clip(0.11, 220)},
    {"text": "Hi", "samples": clip(0.05, 330)},
    {"text": "A longer sentence here.", "samples": clip(0.2, 440)},
]


def ours(model, records):
    from voxlora.families.voxcpm import batch, latents

    items = []
    for r in records:
        item = {
            "text_ids": model.text_tokenizer(r["text"]),
            "latents": latents.encode(model.audio_vae, r["samples"], model.config.patch_size),
        }
        if "ref_samples" in r:
            item["ref_latents"] = latents.encode(model.audio_vae, r["ref_samples"], model.config.patch_size)
        items.append(item)
    return batch.collate(items)


@pytest.mark.parametrize("fixture", ["tiny_v1", "tiny_v15", "tiny_v2"])
@pytest.mark.parametrize("with_ref", [False, True])
def test_loss_equals_voxcpm_forward_on_its_packer_batch(request, fixture, with_ref):
    from voxlora.families.voxcpm import draws, train
    from voxlora.families.voxcpm.draws import clip_seeds
    from voxlora.families.voxcpm.load import load
    from voxlora.families.voxcpm.runtime import classes

    folder = request.getfixturevalue(fixture)
    k = classes("voxcpm2" if fixture == "tiny_v2" else "voxcpm")
    model = load(folder, lora=train.lora_config(k, "all", ["attn", "proj"], r=4, alpha=8))
    with torch.no_grad():  # B starts at zero: give the LoRA a part in the loss
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.copy_(torch.randn_like(p) * 0.1)
    model.train()
    records = [dict(r) for r in RECORDS]
    if with_ref:
        records[0]["ref_samples"] = clip(0.07, 500)
        records[2]["ref_samples"] = clip(0.03, 600)
    theirs = own_batch(model, records)
    mine = ours(model, records)
    for key in ("text_tokens", "text_mask", "audio_mask", "loss_mask", "labels", "position_ids"):
        assert torch.equal(mine[key].long(), theirs[key].long()), key
    assert torch.allclose(mine["audio_feats"], theirs["audio_feats"], atol=1e-6)

    seeds = clip_seeds(1234, 0, range(len(records)))  # each clip's diffusion draws, as lora-train's
    _, got = train.losses(model, mine, seeds=seeds)
    with draws.per_clip(seeds, theirs, model):  # VoxCPM's own forward on its own batch, the same draws
        want = model(
            theirs["text_tokens"], theirs["text_mask"], theirs["audio_feats"], theirs["audio_mask"],
            theirs["loss_mask"], theirs["position_ids"], theirs["labels"],
        )  # fmt: skip
    for key in ("loss/diff", "loss/stop"):
        assert got[key].item() > 0
        assert abs(got[key].item() - want[key].item()) <= 1e-5, key
    _, other = train.losses(model, mine, seeds=clip_seeds(99, 0, range(len(records))))
    assert other["loss/diff"].item() != got["loss/diff"].item()  # the seeds draw the time and noise


def test_a_clip_draws_the_same_in_any_micro_batch(tiny_v1):
    """Loss sums of clips 0, 1, 2 in one batch == in batches [0] and [2, 1]: the draws are per clip."""
    from voxlora.families.voxcpm import batch as packing
    from voxlora.families.voxcpm import latents
    from voxlora.families.voxcpm.data import VoxcpmBatch, voxcpm_loss
    from voxlora.families.voxcpm.draws import clip_seeds
    from voxlora.families.voxcpm.load import load

    model = load(tiny_v1)
    model.train()
    items = [
        {"text_ids": model.text_tokenizer(r["text"]),
         "latents": latents.encode(model.audio_vae, r["samples"], model.config.patch_size)}
        for r in RECORDS
    ]  # fmt: skip

    def sums(clips):
        t = packing.collate([items[i] for i in clips])
        n = int(t["loss_mask"].sum())
        d, s = voxcpm_loss(model, VoxcpmBatch(t, n * 2, n, 0, clip_seeds(7, 1, clips)))
        return d.item(), s.item()

    state = torch.get_rng_state()
    whole = sums([0, 1, 2])
    parts = [sums([0]), sums([2, 1])]
    assert torch.equal(torch.get_rng_state(), state)  # torch's own generator is left alone
    for k in range(2):
        assert whole[k] > 0 and abs(whole[k] - parts[0][k] - parts[1][k]) <= 1e-5 * whole[k], k


def test_per_clip_draws_fill_each_clips_rows_and_refuse_any_other_shape():
    from voxlora.errors import VoxloraError
    from voxlora.families.voxcpm.draws import PerClipDraws

    with PerClipDraws([5, 6], [2, 3], 4):  # 2 clips of 2 and 3 positions, padded to 4: 8 rows
        x = torch.randn(8, 3)
        with pytest.raises(VoxloraError, match="not one row per position"):
            torch.rand(5)
    own = [torch.randn((n, 3), generator=torch.Generator().manual_seed(s)) for s, n in [(5, 2), (6, 3)]]
    assert torch.equal(x[0:2], own[0]) and torch.equal(x[4:7], own[1])
    assert not x[2:4].any() and not x[7:].any()  # padding draws nothing


def test_the_loss_with_per_clip_draws_never_waits_for_the_device(tiny_v1, monkeypatch):
    """Forward and backward read no tensor's value (the clips' lengths come with the batch)."""
    from dataclasses import replace

    from voxlora.families.voxcpm.data import Clip, build_store, voxcpm_loss
    from voxlora.families.voxcpm.latents import encode
    from voxlora.families.voxcpm.load import load

    from tests.speed.syncs import counting_syncs

    model = load(tiny_v1)
    model.train()
    p = model.config.patch_size
    clips = [
        Clip(
            f"r{i}",
            model.text_tokenizer(r["text"]),
            encode(model.audio_vae, r["samples"], p).flatten(0, 1).T,
            None,
            p,
        )
        for i, r in enumerate(RECORDS)
    ]
    batch = build_store(clips, 200.0).batch([2, 0, 1], seed=3, epoch=1)  # host work, before
    tolist = torch.Tensor.tolist
    for lengths, expected in [(batch.lengths, []), ((), ["tolist"])]:  # without them: read off the batch
        with counting_syncs(monkeypatch) as syncs:
            monkeypatch.setattr(
                torch.Tensor, "tolist", lambda t, c=syncs.calls: c.append("tolist") or tolist(t)
            )
            diffusion, stop = voxcpm_loss(model, replace(batch, lengths=lengths))
            (diffusion + stop).backward()
        assert syncs.calls == expected
