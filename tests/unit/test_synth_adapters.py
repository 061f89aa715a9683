"""synth with adapters: a trained adapter changes the audio, applied directly or merged gives the same
codes, one run switches between adapters (base loaded once, each adapter once), and an adapter whose
keys do not fit the base is refused with the list of them."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from voxlora.backends.torch import adapter_switch
from voxlora.errors import VoxloraError
from voxlora.synth import synthesizer as synth_module
from voxlora.synth.config import SynthConfig
from voxlora.synth.requests import Request
from voxlora.synth.synthesizer import Synthesizer

BACKBONE_QV = [f"backbone_model.layers.{i}.self_attn.{p}" for i in range(4) for p in ("q_proj", "v_proj")]
DECODER_QV = [f"depth_decoder.model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]


def write_peft_adapter(model_path, out, seed: int, modules: list[str]):
    """A LoRA adapter with non-zero A and B, written by peft itself (what lora-train writes)."""
    from peft import LoraConfig, get_peft_model
    from transformers import CsmForConditionalGeneration

    model = CsmForConditionalGeneration.from_pretrained(model_path)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=modules, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


def write_embedding_adapter(model_path, out, seed: int):
    """A voxlora adapter that also trains the embeddings directly (CSM's tied audio table included)."""
    from voxlora.adapter import write_adapter
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import new_adapter_for

    adapter = new_adapter_for(model_path, LoraSettings(rank=2, train_embeddings=True), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for _, B in adapter.lora.values():
        B.copy_(torch.randn(B.shape, generator=gen) * 0.1)
    for t in adapter.trained.values():
        t.add_(torch.randn(t.shape, generator=gen) * 0.5)
    return write_adapter(adapter, out)


@pytest.fixture(scope="module")
def adapters(tiny_csm, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "a": str(write_peft_adapter(tiny_csm, root / "a", 1, BACKBONE_QV)),
        "b": str(write_peft_adapter(tiny_csm, root / "b", 2, BACKBONE_QV + DECODER_QV)),
        "e": str(write_embedding_adapter(tiny_csm, root / "e", 3)),
    }


def synthesizer(tiny_csm, merge=False):
    return Synthesizer(SynthConfig(model=str(tiny_csm), max_seconds=0.24, merge=merge))


def codes(synth, tmp_path, adapter, seed=0, name="x.wav"):
    return synth.speak(Request(text="Hello there.", out=tmp_path / name, adapter=adapter, seed=seed)).codes


@pytest.fixture(scope="module")
def direct(tiny_csm):
    return synthesizer(tiny_csm)


@pytest.fixture(scope="module")
def merged(tiny_csm):
    return synthesizer(tiny_csm, merge=True)


def test_a_trained_adapter_changes_the_audio(direct, adapters, tmp_path):
    assert not torch.equal(codes(direct, tmp_path, None), codes(direct, tmp_path, adapters["a"]))


@pytest.mark.parametrize("name", ["a", "b", "e"])
def test_direct_and_merged_give_the_same_codes(direct, merged, adapters, tmp_path, name):
    applied = direct.speak(Request(text="Hi.", out=tmp_path / "d.wav", adapter=adapters[name], seed=5))
    fused = merged.speak(Request(text="Hi.", out=tmp_path / "m.wav", adapter=adapters[name], seed=5))
    assert torch.equal(applied.codes, fused.codes)
    assert (applied.record["merged"], fused.record["merged"]) == (False, True)
    assert fused.record["adapter"] == adapters[name]


def test_a_fresh_adapter_with_zero_b_changes_nothing(direct, tiny_csm, tmp_path):
    from voxlora.adapter import write_adapter
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import new_adapter_for

    fresh = write_adapter(new_adapter_for(tiny_csm, LoraSettings(), seed=0), tmp_path / "fresh")
    assert torch.equal(codes(direct, tmp_path, None), codes(direct, tmp_path, str(fresh)))


@pytest.mark.parametrize("merge", [False, True], ids=["direct", "merged"])
def test_one_run_switches_adapters_loading_the_base_once_and_each_adapter_once(
    tiny_csm, adapters, tmp_path, monkeypatch, merge
):
    calls = {"base": 0, "adapters": []}
    load_csm, read_adapter = synth_module.load_model, adapter_switch.read_adapter

    def counting_load(*args, **kwargs):
        calls["base"] += 1
        return load_csm(*args, **kwargs)

    def counting_read(path):
        calls["adapters"].append(path)
        return read_adapter(path)

    monkeypatch.setattr(synth_module, "load_model", counting_load)
    monkeypatch.setattr(adapter_switch, "read_adapter", counting_read)
    synth = synthesizer(tiny_csm, merge=merge)
    order = [None, adapters["a"], adapters["b"], None, adapters["a"], adapters["b"]]
    out = [codes(synth, tmp_path, name) for name in order]
    assert calls == {"base": 1, "adapters": [adapters["a"], adapters["b"]]}
    assert torch.equal(out[0], out[3])  # the base comes back exactly
    assert torch.equal(out[1], out[4]) and torch.equal(out[2], out[5])
    assert not torch.equal(out[1], out[2])


def test_switching_back_restores_the_base_weights_exactly(tiny_csm, adapters):
    synth = synthesizer(tiny_csm, merge=True)
    before = {k: v.clone() for k, v in synth.bundle.model.state_dict().items()}
    synth.adapters.use(adapters["e"])
    synth.adapters.use(None)
    after = synth.bundle.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_each_adapter_load_logs_how_many_tensors_were_applied(tiny_csm, adapters, caplog):
    import logging

    synth = synthesizer(tiny_csm)  # its own: no adapter loaded before this test
    logging.getLogger("voxlora").propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="voxlora"):
            synth.adapters.use(adapters["b"])
            synth.adapters.use(None)
    finally:
        logging.getLogger("voxlora").propagate = False
    # (a set: under the whole suite pytest can hold a second capture handler, seeing one record twice;
    # that each adapter is loaded once is counted by test_one_run_switches_adapters_loading_...)
    assert {r.getMessage() for r in caplog.records if "tensors applied" in r.getMessage()} == {
        f"{adapters['b']}: adapter loaded, 24 tensors applied (12 LoRA modules, 0 trained tensors; direct)"
    }


def _rewrite(folder, edit):
    path = folder / "adapter_model.safetensors"
    save_file(edit(load_file(path)), path)


def _bad_adapters(tiny_csm, root):
    """An adapter with a module the base lacks, and one made for a model of another width."""
    missing = write_peft_adapter(tiny_csm, root / "missing", 1, BACKBONE_QV[:2])
    _rewrite(missing, lambda t: {k.replace("layers.0.", "layers.9."): v for k, v in t.items()})
    config = json.loads((missing / "adapter_config.json").read_text())
    config["target_modules"] = [m.replace("layers.0.", "layers.9.") for m in config["target_modules"]]
    (missing / "adapter_config.json").write_text(json.dumps(config))
    narrow = write_peft_adapter(tiny_csm, root / "narrow", 1, BACKBONE_QV[:2])
    _rewrite(
        narrow, lambda t: {k: v[:, :32].contiguous() if "q_proj.lora_A" in k else v for k, v in t.items()}
    )
    return missing, narrow


@pytest.mark.parametrize("merge", [False, True], ids=["direct", "merged"])
def test_an_adapter_that_does_not_fit_the_base_is_refused_with_its_keys(tiny_csm, tmp_path, merge):
    missing, narrow = _bad_adapters(tiny_csm, tmp_path)
    synth = synthesizer(tiny_csm, merge=merge)
    with pytest.raises(VoxloraError) as e:
        synth.speak(Request(text="Hi.", out=tmp_path / "x.wav", adapter=str(missing), where="<stdin>:2"))
    assert str(e.value) == (
        f"<stdin>:2: {missing}: 2 adapter keys do not fit the base: "
        "backbone_model.layers.9.self_attn.q_proj: no such module in the base (would be skipped); "
        "backbone_model.layers.9.self_attn.v_proj: no such module in the base (would be skipped)"
    )
    with pytest.raises(VoxloraError) as e:
        synth.speak(Request(text="Hi.", out=tmp_path / "x.wav", adapter=str(narrow)))
    assert str(e.value) == (
        f"{narrow}: 1 adapter keys do not fit the base: "
        "backbone_model.layers.0.self_attn.q_proj: LoRA (64, 32) vs base (64, 64) (out, in)"
    )
    assert not (tmp_path / "x.wav").exists()
    # nothing was half applied: the base still speaks as before
    assert torch.equal(
        codes(synth, tmp_path, None), codes(synthesizer(tiny_csm), tmp_path, None, name="y.wav")
    )


def test_a_missing_adapter_folder_is_one_line(direct, tmp_path):
    with pytest.raises(VoxloraError, match=r"^.*nope: no such adapter folder$"):
        codes(direct, tmp_path, str(tmp_path / "nope"))
