"""Batches from the flat sequence store: layout, seeded order, frame budgets, decoder frame choice."""

import pytest
import torch
from voxlora.errors import VoxloraError
from voxlora.families.csm.batches import choose_decoder_frames, make_batch
from voxlora.families.csm.sequences import (
    EOS,
    FRAME,
    PAD,
    TEXT,
    Clip,
    build_store,
    check_lengths,
    decoder_frames,
)
from voxlora.train.batches import plan_epoch
from voxlora.train.config import TrainConfig, resolve
from voxlora.train.loop import lr_factor


class Cfg:  # the CsmConfig fields build_store reads
    num_codebooks = 4
    audio_token_id = 258
    audio_eos_token_id = 259
    codebook_eos_token_id = 0


def clip(i: int, n_text: int, n_frames: int) -> Clip:
    codes = (torch.arange(4 * n_frames).reshape(4, n_frames) + 100 * i).to(torch.int16)  # (K, F)
    return Clip(where=f"m.jsonl:{i + 1}", text_ids=list(range(1, n_text + 1)), codes=codes)


@pytest.fixture
def store():
    clips = [clip(0, 3, 2), clip(1, 2, 5), clip(2, 4, 1), clip(3, 3, 3), clip(4, 2, 2), clip(5, 5, 4)]
    return build_store(clips, Cfg, frame_rate=12.5)


def test_store_lays_out_text_frames_and_the_end_frame(store):
    # clip 0: 3 text, 2 frames, 1 end frame
    assert store.lengths[0] == 6
    assert store.kind[:6].tolist() == [TEXT, TEXT, TEXT, FRAME, FRAME, EOS]
    assert store.tokens[:6].tolist() == [1, 2, 3, 258, 258, 259]
    assert store.codes[3].tolist() == [0, 2, 4, 6]  # frame 0, codebooks 0..3
    assert store.codes[5].tolist() == [0, 0, 0, 0]  # the end frame: codebook_eos everywhere
    assert store.codes[:3].abs().sum() == 0


def test_batch_is_a_right_padded_gather(store):
    batch = make_batch(store, [0, 1])
    assert batch.tokens.shape == (2, 8) and batch.codes.shape == (2, 8, 4)
    assert batch.kind[0].tolist() == [TEXT] * 3 + [FRAME] * 2 + [EOS] + [PAD] * 2
    alone = make_batch(store, [1])
    assert torch.equal(batch.codes[1], alone.codes[0]) and torch.equal(batch.tokens[1], alone.tokens[0])
    assert batch.n_backbone == (2 + 1) + (5 + 1)  # every frame and end frame predicts codebook 0
    assert batch.n_decoder == batch.decoder.sum() * 3 and batch.frames == 7


def test_every_frame_and_end_frame_reach_the_decoder_without_amortisation(store):
    batch = make_batch(store, [0, 1, 2], fraction=1.0)
    assert torch.equal(batch.decoder, (batch.kind == FRAME) | (batch.kind == EOS))


@pytest.mark.parametrize("fraction", [1 / 16, 0.25, 0.5])
def test_amortised_frame_choice(store, fraction):
    batch = make_batch(store, range(6), fraction=fraction, seed=3, epoch=1)
    for row in range(6):
        kind, chosen = batch.kind[row], batch.decoder[row]
        n_frames = int((kind == FRAME).sum())
        assert int((chosen & (kind == FRAME)).sum()) == decoder_frames(n_frames, fraction)
        assert chosen[kind == EOS].all() and not chosen[(kind == TEXT) | (kind == PAD)].any()
    # the choice is per clip, whatever the batch: clip 5 alone chooses the same frames
    alone = make_batch(store, [5], fraction=fraction, seed=3, epoch=1)
    assert torch.equal(alone.decoder[0], batch.decoder[5, : alone.decoder.shape[1]])
    other_epoch = choose_decoder_frames(batch.kind, batch.clips, fraction, seed=3, epoch=2)
    assert other_epoch.sum() == batch.decoder.sum() and not torch.equal(other_epoch, batch.decoder)


def test_decoder_frames_counts_like_the_processor():
    assert [decoder_frames(n, 1 / 16) for n in (1, 16, 17, 100)] == [1, 1, 2, 7]
    assert decoder_frames(9, 1.0) == 9


def test_epoch_plan_is_seeded_complete_and_split_by_grad_accum():
    lengths = torch.tensor([5, 9, 3, 7, 4, 8, 6, 2, 10, 1])
    plan = plan_epoch(lengths, seed=0, epoch=0, batch_size=4)
    seen = torch.cat([mb for step in plan for mb in step]).sort().values
    assert seen.tolist() == list(range(10))  # every clip exactly once
    again = plan_epoch(lengths, seed=0, epoch=0, batch_size=4)
    assert [s[0].tolist() for s in again] == [s[0].tolist() for s in plan]
    other = plan_epoch(lengths, seed=0, epoch=1, batch_size=4)
    assert [s[0].tolist() for s in other] != [s[0].tolist() for s in plan]
    accum = plan_epoch(lengths, seed=0, epoch=0, batch_size=2, grad_accum=2)
    assert [torch.cat(s).tolist() for s in accum] == [s[0].tolist() for s in plan]
    assert all(len(s) <= 2 for s in accum)


def test_frame_budget_batches_stay_under_it():
    lengths = torch.tensor([5, 9, 3, 7, 4, 8, 6, 2, 10, 1])
    plan = plan_epoch(lengths, seed=1, epoch=0, max_batch_frames=16)
    micro = [mb for step in plan for mb in step]
    assert sorted(torch.cat(micro).tolist()) == list(range(10))
    assert all(len(mb) * int(lengths[mb].max()) <= 16 for mb in micro)
    assert any(len(mb) > 1 for mb in micro)


def test_too_long_clips_are_refused_by_name():
    clips = [clip(0, 3, 2), clip(7, 3, 10)]
    check_lengths(clips, max_positions=20)
    with pytest.raises(VoxloraError, match=r"^m.jsonl:8: too long for the model: 14 positions"):
        check_lengths(clips, max_positions=13)
    with pytest.raises(VoxloraError, match=r"^m.jsonl:8: 14 positions do not fit --max-batch-frames 12"):
        check_lengths(clips, max_positions=100, max_batch_frames=12)


def test_lr_schedule():
    assert [round(lr_factor(s, 10, 2, "cosine"), 3) for s in (0, 1, 2, 9)] == [0.333, 0.667, 1.0, 0.038]
    assert lr_factor(6, 10, 2, "linear") == 0.5
    assert lr_factor(9, 10, 0, "constant") == 1.0


@pytest.mark.parametrize("lr", [0.0, -1e-4, float("nan")])
def test_bad_learning_rate(lr):
    with pytest.raises(VoxloraError, match="--lr must be a positive number"):
        resolve(TrainConfig(model="m", manifest="t.jsonl", out="o", lr=lr))


def test_defaults_resolve():
    assert resolve(TrainConfig(out="runs/a")).lr == 5e-4
    assert resolve(TrainConfig(out="runs/a", full=True)).lr == 1e-5
    assert resolve(TrainConfig(out="runs/a")).cache_dir.endswith("runs/voxlora-codes")
