"""Higgs Audio v2: both layouts load (strictly), cached-code batches equal the processor's, the loss
and LoRA gradients equal the model's own, codes are cached per clip and tokenizer."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from voxlora.errors import VoxloraError
from voxlora.families.higgs_audio_v2 import batch as hb
from voxlora.families.higgs_audio_v2 import codec, layout
from voxlora.families.higgs_audio_v2.load import load_model
from voxlora.families.higgs_audio_v2.loss import higgs_loss, mean_loss

FIELDS = ("input_ids", "attention_mask", "audio_input_ids", "audio_input_ids_mask", "labels", "audio_labels")


def test_name_mapping_both_ways_on_every_tensor(tiny_higgs_hf, tiny_higgs_boson):
    hf = load_file(str(tiny_higgs_hf / "model.safetensors"))
    boson = load_file(str(tiny_higgs_boson / "model.safetensors"))
    assert "layers.0.audio_mlp.gate_proj.weight" in boson
    assert "audio_decoder_proj.audio_lm_head.weight" in boson
    assert "audio_codebook_embeddings.weight" in boson
    assert not any(k.startswith("model.") for k in boson)
    assert {layout.original_name(k) for k in hf} == set(boson) - {k for k in boson if k.startswith("audio_")
                                                                  and "codebook" not in k and "decoder" not in k}  # fmt: skip
    assert {layout.hf_name(layout.original_name(k)) for k in hf} == set(hf)
    converted = layout.to_transformers(boson)  # the audio-in tower is dropped on purpose
    assert set(converted) == set(hf) and all(torch.equal(converted[k], hf[k]) for k in hf)


def test_partially_frozen_splits_are_joined():
    a, b = torch.ones(3, 2), torch.zeros(1, 2)
    state = {"embed_tokens.embedding_frozen.weight": a, "embed_tokens.embedding_trainable.weight": b}
    assert torch.equal(layout.to_transformers(state)["model.embed_tokens.weight"], torch.cat([a, b]))


def test_config_round_trip(tiny_higgs_hf):
    config = json.loads((tiny_higgs_hf / "config.json").read_text())
    back = layout.config_from_original(layout.config_to_original(config))
    assert back == {k: config[k] for k in back}
    assert {"num_codebooks", "codebook_size", "audio_token_id", "rope_parameters"} <= set(back)


def test_both_layouts_load_the_same_model(tiny_higgs_hf, tiny_higgs_boson):
    a, b = load_model(tiny_higgs_hf).state_dict(), load_model(tiny_higgs_boson).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("damage", ["extra", "missing"])
def test_missing_or_unexpected_tensors_are_an_error(tiny_higgs_boson, tmp_path, damage):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_higgs_boson, bad)
    state = load_file(str(bad / "model.safetensors"))
    if damage == "extra":
        state["layers.0.audio_attn.q_proj.weight"] = torch.zeros(2, 2)
    else:
        del state["layers.1.audio_mlp.down_proj.weight"]
    save_file(state, str(bad / "model.safetensors"))
    word = {"extra": "unexpected keys: model.layers.0.audio_attn", "missing": "missing keys: model.layers.1"}
    with pytest.raises(VoxloraError, match=word[damage]):
        load_model(bad)


def test_an_original_variant_transformers_cannot_express_is_refused(tiny_higgs_boson, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_higgs_boson, bad)
    config = json.loads((bad / "config.json").read_text())
    config["use_audio_out_self_attention"] = True
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(VoxloraError, match="use_audio_out_self_attention"):
        load_model(bad)


def _records(processor, clips, codes):
    texts = [
        hb.prompt_text(processor, hb.conversation(t)) for t in ("hello there", "a longer sentence to say")
    ]
    ref = processor(text=list(texts), audio=clips[:2], output_labels=True, return_tensors="pt")
    ours = hb.build_batch(processor, [(texts[0], [codes[0]]), (texts[1], [codes[1]])], target_only=False)
    return ref, ours


@pytest.fixture(scope="module")
def codes(higgs_processor, clips):
    return [codec.encode(higgs_processor, c) for c in clips]


def test_batch_from_cached_codes_equals_the_processors(higgs_processor, clips, codes):
    ref, ours = _records(higgs_processor, clips, codes)
    for name in FIELDS:
        assert torch.equal(ref[name].long(), getattr(ours, name).long()), name
    assert codes[0].shape == (8, codec.frames(0.5))


@pytest.mark.parametrize("text_head", [False, True])
def test_loss_and_lora_gradients_equal_the_models_own(
    tiny_higgs_hf, higgs_processor, clips, codes, text_head
):
    from peft import LoraConfig, get_peft_model

    ref, ours = _records(higgs_processor, clips, codes)
    torch.manual_seed(0)
    model = get_peft_model(
        load_model(tiny_higgs_hf, use_text_head=text_head),
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "v_proj", "audio_mlp.up_proj"],
            init_lora_weights=False,
        ),
    )
    theirs = model.base_model.model(**ref).loss  # the model's own forward, labels and all
    theirs.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    mine = mean_loss(model, ours)
    mine.backward()
    assert abs(mine.item() - theirs.item()) < 1e-5 * max(1.0, abs(theirs.item()))
    for name, grad in want.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, rtol=1e-4, atol=1e-6)
    assert (higgs_loss(model, ours)[1].item() > 0) == text_head  # the text loss is in there with the head


def test_target_only_masks_the_reference_and_the_prompt(higgs_processor, clips, codes, tiny_higgs_hf):
    text = hb.prompt_text(higgs_processor, hb.conversation("target words", reference_text="ref words"))
    full = hb.build_batch(higgs_processor, [(text, [codes[2], codes[0]])], target_only=False)
    mine = hb.build_batch(higgs_processor, [(text, [codes[2], codes[0]])])
    ref_frames = codes[2].shape[1] + 2 + 7
    assert (mine.audio_labels[0, :ref_frames] == hb.IGNORE).all()
    assert torch.equal(mine.audio_labels[0, ref_frames:], full.audio_labels[0, ref_frames:])
    assert mine.n_audio == codes[0].shape[1]  # the target's frames only
    kept = mine.labels[0][mine.labels[0] != hb.IGNORE].tolist()
    tok = higgs_processor.tokenizer
    assert tok.convert_ids_to_tokens(kept)[-2:] == ["<|audio_eos|>", "<|eot_id|>"]
    assert "user" not in tok.decode(kept)
    # the model's own loss with the processor's labels masked the same way is voxlora's number
    model = load_model(tiny_higgs_hf, use_text_head=True)
    ref = higgs_processor(text=[text], audio=[clips[2], clips[0]], output_labels=True, return_tensors="pt")
    ref["labels"], ref["audio_labels"] = mine.labels, mine.audio_labels
    assert abs(model(**ref).loss.item() - mean_loss(model, mine).item()) < 1e-4


def test_codes_are_cached_per_clip_and_tokenizer(higgs_processor, clips, tmp_path, monkeypatch):
    from voxlora.audio import write_wav
    from voxlora.backends.torch.codec import codec_identity
    from voxlora.codes_cache import CodesCache, file_sha256

    wav = tmp_path / "a.wav"
    write_wav(wav, clips[0], 24000)
    cache = CodesCache(tmp_path / "cache", codec_identity(higgs_processor.audio_tokenizer))
    first, cached = codec.clip_codes(higgs_processor, cache, wav)
    assert not cached
    calls = []
    monkeypatch.setattr(codec, "encode", lambda *a: calls.append(a))
    again, cached = codec.clip_codes(higgs_processor, cache, wav)
    assert torch.equal(again, first) and cached and not calls
    assert CodesCache(tmp_path / "cache", "another tokenizer").get(file_sha256(wav), 8, 32) is None


def test_reference_pairing_and_chatml_records(higgs_processor, tmp_path):
    from voxlora.backends.torch.codec import codec_identity
    from voxlora.chatml import pair_by_speaker
    from voxlora.codes_cache import CodesCache
    from voxlora.families.higgs_audio_v2 import data
    from voxlora.train.recipe import read_records

    from tests.trainkit import make_manifest

    plain = read_records(str(make_manifest(tmp_path / "d", n=4, seconds=0.3)))  # speakers 0, 1, 0, 1
    cache = CodesCache(tmp_path / "cache", codec_identity(higgs_processor.audio_tokenizer))
    clips, stats = data.prepare_clips(plain, higgs_processor, cache, reference="auto")
    assert (stats.clips, stats.encoded, stats.cached) == (4, 4, 0)  # each file coded once, reference or not
    assert all(c.reference is not None for c in clips)
    assert all(c.chat.count("<|AUDIO_OUT|>") == 2 for c in clips)
    none, stats = data.prepare_clips(plain, higgs_processor, cache, reference="none")
    assert all(c.reference is None for c in none) and stats.cached == 4
    chatml = tmp_path / "chatml.jsonl"
    chatml.write_text("".join(json.dumps(r) + "\n" for r in pair_by_speaker(plain)), encoding="utf-8")
    records = read_records(str(chatml))
    speaker = {r["audio"]: r["speaker"] for r in plain}
    assert all(r["reference"]["audio"] != r["audio"] for r in records)
    assert all(speaker[r["reference"]["audio"]] == speaker[r["audio"]] for r in records)
    from_chatml, _ = data.prepare_clips(records, higgs_processor, cache, reference="auto")
    assert all(torch.equal(a.codes, b.codes) for a, b in zip(from_chatml, clips, strict=True))
    assert all(torch.equal(a.reference, b.reference) for a, b in zip(from_chatml, clips, strict=True))
    store = data.HiggsStore(clips, higgs_processor, text_head=False, frame_rate=25.0)
    batch = store.batch(torch.tensor([0, 1]))
    assert batch.n_backbone == int(store.frames[:2].sum())  # the targets' frames: references are context
    assert int(store.lengths[0]) == store.batch(torch.tensor([0])).inputs.input_ids.shape[1]


@pytest.mark.parametrize(
    "module, name, protocol",
    [("train_torch", "HiggsTraining", "TrainModel"), ("speak", "HiggsSynth", "SpeakModel")],
)
def test_higgs_fills_the_family_interface(module, name, protocol):
    import importlib
    import inspect

    from voxlora.families import base, registry

    from tests.structure.test_families import members

    assert registry.model_family("higgs-audio-v2").layout.name == "higgs-audio-v2"
    cls = getattr(importlib.import_module(f"voxlora.families.higgs_audio_v2.{module}"), name)
    source = inspect.getsource(cls)
    missing = sorted(
        m for m in members(getattr(base, protocol)) if not hasattr(cls, m) and f"self.{m} =" not in source
    )
    assert missing == []
