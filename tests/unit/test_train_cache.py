"""The Mimi codes cache: keyed by audio bytes and codec identity, checked on read, codec called once."""

import pytest
import torch
from voxlora.backends.torch.codec import codec_identity
from voxlora.codes_cache import CodesCache, file_sha256
from voxlora.families.csm.sequences import prepare_clips
from voxlora.models.csm import load_csm
from voxlora.train.config import TrainConfig, resolve
from voxlora.train.recipe import read_records

from tests.trainkit import make_manifest  # noqa: F401


@pytest.fixture
def bundle(tiny_csm):  # noqa: F811
    return load_csm(tiny_csm)


def count_calls(monkeypatch, codec) -> list:
    calls = []
    encode = codec.encode

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return encode(*args, **kwargs)

    monkeypatch.setattr(codec, "encode", counting)
    return calls


def test_put_get_and_refusals(tmp_path):
    cache = CodesCache(tmp_path, "codec-a")
    codes = torch.randint(0, 64, (32, 5), dtype=torch.int16)
    cache.put("ab" * 32, codes)
    assert torch.equal(cache.get("ab" * 32, 32, 64), codes)
    assert cache.get("cd" * 32, 32, 64) is None  # another audio file
    assert CodesCache(tmp_path, "codec-b").get("ab" * 32, 32, 64) is None  # another codec
    assert cache.get("ab" * 32, 16, 64) is None  # another number of codebooks
    assert cache.get("ab" * 32, 32, 8) is None  # codes out of range for this codec
    cache.path("ab" * 32).write_bytes(b"\x00garbage")  # damaged entry: a miss, never an error
    assert cache.get("ab" * 32, 32, 64) is None


def test_codec_identity_follows_config_and_weights(bundle):
    before = codec_identity(bundle.codec)
    assert codec_identity(bundle.codec) == before
    with torch.no_grad():
        next(bundle.codec.parameters()).add_(1e-3)
    assert codec_identity(bundle.codec) != before


def test_codec_runs_once_per_clip_and_again_only_for_changed_audio(
    bundle,
    tmp_path,
    monkeypatch,
):
    from voxlora.train.loop import train

    from tests.datagen import write_wav

    manifest = make_manifest(tmp_path, n=4)
    records = read_records(str(manifest))
    cache = CodesCache(tmp_path / "cache", codec_identity(bundle.codec))
    calls = count_calls(monkeypatch, bundle.codec)
    clips, stats = prepare_clips(records, bundle, cache)
    assert len(calls) == 4 and (stats.encoded, stats.cached) == (4, 0)

    clips_again, stats = prepare_clips(records, bundle, cache)
    assert len(calls) == 4 and (stats.encoded, stats.cached) == (0, 4)
    assert all(torch.equal(a.codes, b.codes) for a, b in zip(clips, clips_again, strict=True))

    # two epochs of training never touch the codec
    from voxlora.families.csm.sequences import build_store

    store = build_store(clips, bundle.config, 12.5)
    config = resolve(TrainConfig(out=str(tmp_path / "o"), epochs=2, batch_size=2, log_every=1))
    for p in bundle.model.parameters():
        p.requires_grad_(False)
    bundle.model.lm_head.weight.requires_grad_(True)
    records_out = list(train(bundle.model, store, config))
    assert records_out[-1]["epoch"] == 2.0 and len(calls) == 4

    write_wav(records[1]["audio"], seconds=0.9, seed=99)  # the file changes: its codes are redone
    assert file_sha256(records[1]["audio"]) not in {file_sha256(r["audio"]) for r in records[2:]}
    clips_new, stats = prepare_clips(records, bundle, cache)
    assert len(calls) == 5 and (stats.encoded, stats.cached) == (1, 3)
    assert clips_new[1].codes.shape != clips[1].codes.shape


def test_speaker_prefix_and_default_speaker(bundle, tmp_path):
    manifest = make_manifest(tmp_path, n=2)
    records = read_records(str(manifest))
    records[1].pop("speaker")
    cache = CodesCache(tmp_path / "cache", codec_identity(bundle.codec))
    clips, _ = prepare_clips(records, bundle, cache, default_speaker=7)
    texts = [bundle.tokenizer.decode(c.text_ids) for c in clips]
    assert texts[0].startswith("<|begin_of_text|>[0]") and texts[1].startswith("<|begin_of_text|>[7]")
    assert all(t.endswith("<|end_of_text|>") for t in texts)
