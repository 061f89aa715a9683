"""A tiny VoxCPM overfits three clips with voxlora's VoxCPM training pieces as far as VoxCPM's own
forward does in a plain loop over the same steps (its packer's batches, its LoRA, the same start),
and the frozen weights do not move."""

from types import SimpleNamespace

import torch

from tests.voxcpm.own import own_batch
from tests.voxcpm.test_voxcpm_loss import RECORDS, ours

STEPS, LR = 30, 1e-2


def eval_loss(model, batch, seeds=range(6)):
    from voxlora.families.voxcpm import train
    from voxlora.families.voxcpm.draws import clip_seeds

    model.eval()
    with torch.no_grad():
        values = [float(train.losses(model, batch, seeds=clip_seeds(s, 0, [0, 1, 2]))[0]) for s in seeds]
    model.train()
    return sum(values) / len(values)


def test_overfits_as_far_as_voxcpm_own_loop(tiny_v1, tmp_path):
    from voxlora.families.voxcpm import draws
    from voxlora.families.voxcpm.data import Clip, build_store
    from voxlora.families.voxcpm.latents import encode
    from voxlora.families.voxcpm.load import load
    from voxlora.families.voxcpm.runtime import classes
    from voxlora.families.voxcpm.train_torch import TorchTraining, own_lora
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import new_adapter_for

    torch.manual_seed(0)
    adapter = new_adapter_for(tiny_v1, LoraSettings(rank=4, alpha=8, targets=("attn",)), seed=0)
    config = SimpleNamespace(
        device="cpu", full=False, optimizer="adamw", lr=LR, weight_decay=0.0, dtype="fp32", max_grad_norm=0.0
    )
    ours_model = TorchTraining(config, tiny_v1)
    base = {n: t.clone() for n, t in ours_model.model.state_dict().items()}
    model, names = ours_model.make_trainable(adapter)
    assert names and all("lora_" in n for n in names)
    batch_tensors = ours(ours_model.model, RECORDS)
    stepper = ours_model.stepper(model, config)
    vae, p = ours_model.model.audio_vae, ours_model.model.config.patch_size
    clips = [  # as lora-train lays them out: latents (D, F) from the AudioVAE, once
        Clip(
            f"r{i}",
            ours_model.model.text_tokenizer(r["text"]),
            encode(vae, r["samples"], p).flatten(0, 1).T,
            None,
            p,
        )
        for i, r in enumerate(RECORDS)
    ]
    store = build_store(clips, ours_model.frame_rate)
    start = eval_loss(model, batch_tensors)
    for _ in range(STEPS):
        stepper.backward([store.batch([0, 1, 2])])
        stepper.update(LR)
    ours_end = eval_loss(model, batch_tensors)
    after = model.base_model.model.state_dict()
    for name, t in base.items():  # frozen: bit for bit
        key = (
            name
            if name in after
            else name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        )
        assert torch.equal(after[key], t), name

    # VoxCPM's own: its LoRA (same A, B = 0), its packer's batch each step, AdamW, a plain loop
    k = classes("voxcpm")
    tensors, info = own_lora(adapter, k)
    theirs = load(tiny_v1, lora=k.lora_config(**info["lora_config"]))
    state = dict(theirs.named_parameters())
    for name, t in tensors.items():
        state[name].data.copy_(t)
    for name, p_ in theirs.named_parameters():
        p_.requires_grad = "lora_" in name
    opt = torch.optim.AdamW([q for q in theirs.parameters() if q.requires_grad], lr=LR, weight_decay=0.0)
    theirs.train()
    for _ in range(STEPS):
        b = own_batch(theirs, RECORDS)
        with draws.per_clip(draws.clip_seeds(0, 0, [0, 1, 2]), b, theirs):  # the draws lora-train makes
            out = theirs(b["text_tokens"], b["text_mask"], b["audio_feats"], b["audio_mask"], b["loss_mask"],
                         b["position_ids"], b["labels"])  # fmt: skip
        opt.zero_grad()
        (out["loss/diff"] + out["loss/stop"]).backward()
        opt.step()
    theirs_end = eval_loss(theirs, batch_tensors)
    assert ours_end < 0.7 * start and theirs_end < 0.7 * start, (start, ours_end, theirs_end)
    # the same draws, the same batches' numbers: the same run, not only a close one
    assert abs(ours_end - theirs_end) <= 0.02 * theirs_end, (start, ours_end, theirs_end)
