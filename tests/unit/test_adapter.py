"""The adapter folder (voxlora.adapter, voxlora.peft_bridge), with peft itself as the reference."""

import json
import warnings

import pytest
import torch
from safetensors.torch import save_file
from voxlora import lora, targets
from voxlora.adapter import (
    Adapter,
    check_against_base,
    fingerprint,
    read_adapter,
    write_adapter,
)
from voxlora.errors import VoxloraError
from voxlora.lora_options import LoraSettings
from voxlora.models.csm import load_csm, weight_shapes
from voxlora.peft_bridge import adapter_from_model, apply_adapter, new_adapter_for

SETTINGS = [
    LoraSettings(),
    LoraSettings(rank=4, alpha=8, targets=("all-linear", "codebook0_head", "projection")),
    LoraSettings(targets=("attn",), component="decoder", layers="1", rslora=True, init="gaussian"),
    LoraSettings(targets=("mlp",), train_embeddings=True),
]


def with_random_B(adapter: Adapter, seed: int = 1) -> Adapter:
    """As if trained: B non-zero everywhere (and the embeddings moved)."""
    gen = torch.Generator().manual_seed(seed)
    for _, B in adapter.lora.values():
        B.copy_(torch.randn(B.shape, generator=gen) * 0.1)
    for t in adapter.trained.values():
        t.add_(torch.randn(t.shape, generator=gen) * 0.1)
    return adapter


def assert_same(a: Adapter, b: Adapter):
    assert (a.r, a.alpha, a.rslora, a.dropout, a.scaling) == (b.r, b.alpha, b.rslora, b.dropout, b.scaling)
    assert set(a.lora) == set(b.lora) and set(a.trained) == set(b.trained)
    for m in a.lora:
        assert torch.equal(a.lora[m][0], b.lora[m][0]) and torch.equal(a.lora[m][1], b.lora[m][1]), m
    for n in a.trained:
        assert torch.equal(a.trained[n], b.trained[n]), n


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s.targets))
def test_peft_loads_every_adapter_lora_init_writes(tiny_csm, tmp_path, settings):
    from peft import PeftModel

    adapter = with_random_B(new_adapter_for(tiny_csm, settings, seed=0))
    write_adapter(adapter, tmp_path / "a")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(load_csm(tiny_csm).model, tmp_path / "a")
        result = model.load_adapter(tmp_path / "a", adapter_name="again")
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "Unexpected keyword" in m or "missing adapter keys" in m], messages
    assert result.unexpected_keys == []
    assert result.missing_keys == []  # peft keeps only this adapter's missing LoRA keys here
    # what peft holds is what the file holds
    base = model.base_model.model
    for module, (A, B) in adapter.lora.items():
        layer = base.get_submodule(module)
        assert torch.equal(layer.lora_A["default"].weight, A) and torch.equal(
            layer.lora_B["default"].weight, B
        )
        assert layer.scaling["default"] == pytest.approx(adapter.scaling)
    for name, t in adapter.trained.items():
        module = base.get_submodule(name.rpartition(".")[0])
        assert torch.equal(module.modules_to_save["default"].weight, t)


def test_config_is_a_lora_config_peft_accepts_without_warnings(tiny_csm, tmp_path):
    from peft import LoraConfig, PeftConfig

    write_adapter(new_adapter_for(tiny_csm, LoraSettings(train_embeddings=True)), tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = PeftConfig.from_pretrained(tmp_path / "a")
    assert isinstance(config, LoraConfig)
    assert config.r == 8 and config.lora_alpha == 16 and config.task_type is None
    assert config.modules_to_save == ["backbone_model.embed_tokens.embed_audio_tokens", "embed_text_tokens"]
    assert not any(m.startswith("codec_model") for m in config.target_modules)
    sidecar = json.loads((tmp_path / "a" / "voxlora.json").read_text())
    assert sidecar["format_version"] == 1 and sidecar["backend"] == "torch"
    assert sidecar["base_fingerprint"] == fingerprint(weight_shapes(tiny_csm))
    assert sidecar["created_with"]["settings"]["train_embeddings"] is True


def test_peft_keys_on_disk(tiny_csm, tmp_path):
    from safetensors import safe_open

    write_adapter(new_adapter_for(tiny_csm, LoraSettings(rank=2, train_embeddings=True)), tmp_path / "a")
    with safe_open(tmp_path / "a" / "adapter_model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "base_model.model.backbone_model.layers.0.self_attn.q_proj.lora_A.weight" in keys
    assert "base_model.model.backbone_model.layers.0.self_attn.q_proj.lora_B.weight" in keys
    assert "base_model.model.embed_text_tokens.weight" in keys  # modules_to_save, as peft writes it


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")  # peft's own chatter
def test_a_peft_made_adapter_reads_back_unchanged(tiny_csm, tmp_path):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=4,
        lora_alpha=12,
        target_modules=["backbone_model.layers.1.self_attn.q_proj", "lm_head"],
        modules_to_save=["embed_text_tokens"],
    )
    model = get_peft_model(load_csm(tiny_csm).model, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.add_(torch.randn_like(p))
    model.save_pretrained(
        tmp_path / "peft"
    )  # also saves lm_head.base_layer.weight (lm_head is an "embedding" name)
    adapter = read_adapter(tmp_path / "peft")
    assert adapter.format == "peft" and adapter.r == 4 and adapter.alpha == 12 and adapter.scaling == 3.0
    assert set(adapter.lora) == {"backbone_model.layers.1.self_attn.q_proj", "lm_head"}
    base = model.base_model.model
    A, B = adapter.lora["lm_head"]
    assert torch.equal(A, base.lm_head.lora_A["default"].weight) and torch.equal(
        B, base.lm_head.lora_B["default"].weight
    )
    assert torch.equal(
        adapter.trained["embed_text_tokens.weight"], base.embed_text_tokens.modules_to_save["default"].weight
    )
    write_adapter(adapter, tmp_path / "again")
    assert_same(read_adapter(tmp_path / "again"), adapter)


def test_mlx_round_trip_is_identical_after_transpose(tiny_csm, tmp_path):
    adapter = with_random_B(new_adapter_for(tiny_csm, LoraSettings(rank=4, alpha=40)))
    folder = tmp_path / "mlx"
    folder.mkdir()
    tensors = {}
    for module, (A, B) in adapter.lora.items():
        lora_a, lora_b, scale = lora.to_mlx(A, B, adapter.scaling)
        tensors[f"{module}.lora_a"], tensors[f"{module}.lora_b"] = lora_a, lora_b  # (in, r), (r, out)
    save_file(tensors, folder / "adapters.safetensors")
    config = {
        "fine_tune_type": "lora",
        "num_layers": 4,
        "model": str(tiny_csm),
        "lora_parameters": {"rank": 4, "scale": scale, "dropout": 0.0},
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    back = read_adapter(folder)
    assert back.format == "mlx" and back.base_model == str(tiny_csm)
    assert_same(back, adapter)


def test_pickled_weights_are_refused_not_unpickled(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(VoxloraError, match="adapter_model.bin: pickle weights are not read"):
        read_adapter(tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"use_dora": True}, "use_dora=True is not supported"),
        ({"peft_type": "IA3"}, "only LORA adapters are read"),
        ({"rank_pattern": {"q_proj": 4}}, "rank_pattern"),
        ({"init_lora_weights": "pissa_niter_4"}, "also changes the base weights"),
    ],
)
def test_unsupported_peft_features_are_refused(tiny_csm, tmp_path, change, message):
    write_adapter(new_adapter_for(tiny_csm, LoraSettings()), tmp_path / "a")
    path = tmp_path / "a" / "adapter_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(VoxloraError, match=message):
        read_adapter(tmp_path / "a")


def test_a_newer_format_version_is_refused(tiny_csm, tmp_path):
    write_adapter(new_adapter_for(tiny_csm, LoraSettings()), tmp_path / "a")
    (tmp_path / "a" / "voxlora.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(VoxloraError, match="format_version 99 is newer"):
        read_adapter(tmp_path / "a")


def test_check_against_base_lists_every_problem(tiny_csm):
    shapes = targets.base_shapes(tiny_csm)
    adapter = new_adapter_for(tiny_csm, LoraSettings(train_embeddings=True))
    assert check_against_base(adapter, shapes) == []
    adapter.lora["model.layers.0.self_attn.q_proj"] = (torch.zeros(8, 64), torch.zeros(64, 8))
    adapter.lora["backbone_model.layers.0.self_attn.v_proj"] = (torch.zeros(8, 48), torch.zeros(32, 8))
    adapter.trained["embed_text_tokens.weight"] = torch.zeros(10, 64)
    assert check_against_base(adapter, shapes) == [
        "backbone_model.layers.0.self_attn.v_proj: LoRA (32, 48) vs base (32, 64) (out, in)",
        "model.layers.0.self_attn.q_proj: no such module in the base (would be skipped)",
        "embed_text_tokens.weight: trained (10, 64) vs base (264, 64)",
    ]


def test_apply_refuses_an_adapter_that_does_not_fit(tiny_csm):
    adapter = new_adapter_for(tiny_csm, LoraSettings())
    adapter.lora["model.layers.0.self_attn.q_proj"] = (torch.zeros(8, 64), torch.zeros(64, 8))
    with pytest.raises(
        VoxloraError, match="1 adapter keys do not fit the base: model.layers.0.self_attn.q_proj"
    ):
        apply_adapter(load_csm(tiny_csm).model, adapter)


def test_apply_then_take_back_out_is_identical(tiny_csm):
    adapter = with_random_B(new_adapter_for(tiny_csm, SETTINGS[3]))
    model, n = apply_adapter(load_csm(tiny_csm).model, adapter, trainable=True)
    assert n == 2 * len(adapter.lora) + len(adapter.trained)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    assert_same(adapter_from_model(model, like=adapter), adapter)


def test_a_fresh_adapter_from_a_loaded_model_equals_one_from_the_folder(tiny_csm):
    settings = LoraSettings(targets=("attn", "lm_head"), train_embeddings=True)
    from_model = new_adapter_for(load_csm(tiny_csm).model, settings, seed=7, base_model=str(tiny_csm))
    from_folder = new_adapter_for(tiny_csm, settings, seed=7)
    assert_same(from_model, from_folder)
    assert from_model.meta["base_fingerprint"] == from_folder.meta["base_fingerprint"]


def test_fingerprint_tells_architectures_apart(tiny_csm, other_tiny_csm):
    shapes = weight_shapes(tiny_csm)
    assert fingerprint(shapes) == fingerprint(weight_shapes(other_tiny_csm))  # same shapes, other weights
    changed = dict(shapes, **{"lm_head.weight": (68, 64)})
    assert fingerprint(changed) != fingerprint(shapes)


def test_write_is_atomic_and_replaces(tiny_csm, tmp_path):
    out = tmp_path / "a"
    write_adapter(new_adapter_for(tiny_csm, LoraSettings(rank=2)), out)
    write_adapter(new_adapter_for(tiny_csm, LoraSettings(rank=4)), out)
    assert read_adapter(out).r == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temporary folders left behind


@pytest.mark.parametrize("key", ["r", "lora_alpha", "target_modules"])
def test_a_config_missing_a_field_that_sets_the_numbers_is_refused(tiny_csm, tmp_path, key):
    folder = tmp_path / "a"
    write_adapter(new_adapter_for(tiny_csm, LoraSettings(), seed=0), folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    del config[key]
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(VoxloraError, match=rf"adapter_config.json: missing {key}$"):
        read_adapter(folder)


def test_the_keys_read_without_importing_peft_are_all_known_to_the_installed_peft():
    from voxlora import adapter

    assert adapter._COMMON_PEFT_KEYS <= adapter._peft_config_fields()
