"""The csm-1b-mlx layout (``ckpt.safetensors`` alone, as senstella/csm-1b-mlx) in the five commands.

The folder is the tiny CSM written in that layout (`tests.fixtures.mlx_ckpt`): csm-mlx's names,
interleaved q/k rows, no codec, no config. Its codec, tokenizer and config come from ``--codec``
(the tiny sesame-layout CSM). Adapters are the same on both layouts; lora-merge writes the base's
own layout; synth and lora-train give what the sesame-layout base gives.
"""

import json

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_audio")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from voxlora.adapter import read_adapter, write_adapter  # noqa: E402
from voxlora.backends.mlx import csm as mlx_csm  # noqa: E402
from voxlora.backends.mlx import lora as mlx_lora  # noqa: E402
from voxlora.cli.lora_init import main as lora_init  # noqa: E402
from voxlora.cli.lora_inspect import main as lora_inspect  # noqa: E402
from voxlora.cli.lora_merge import main as lora_merge  # noqa: E402
from voxlora.cli.lora_train import main as lora_train  # noqa: E402
from voxlora.cli.synth import main as synth  # noqa: E402
from voxlora.families.csm import mlx_layout  # noqa: E402
from voxlora.families.csm.batches import make_batch  # noqa: E402
from voxlora.lora_options import LoraSettings  # noqa: E402
from voxlora.peft_bridge import new_adapter_for  # noqa: E402

from tests.fixtures.mlx_ckpt import mlx_ckpt_tensors, write_mlx_ckpt  # noqa: E402
from tests.mlx.test_mlx_backend import make_store, mlx_logits  # noqa: E402
from tests.trainkit import make_manifest  # noqa: E402

WIDE = LoraSettings(targets=("all-linear", "lm_head", "projection"))
CODEC_MISSING = "a csm-1b-mlx model (ckpt.safetensors) has no codec or tokenizer; {} needs --codec FOLDER"


def run(command, *args):
    return CliRunner().invoke(command.cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def ckpt(tiny_csm, tmp_path_factory):
    """The tiny CSM as csm-1b-mlx stores it: ckpt.safetensors and a README, nothing else."""
    return write_mlx_ckpt(tiny_csm, tmp_path_factory.mktemp("mlx") / "csm-1b-mlx")


@pytest.fixture(scope="module")
def ckpt_with_config(tiny_csm, tmp_path_factory):
    """The same with the tiny model's config.json beside it (sizes other than CSM-1B's need one)."""
    return write_mlx_ckpt(tiny_csm, tmp_path_factory.mktemp("mlx") / "csm-1b-mlx-config", config=True)


@pytest.fixture(scope="module")
def adapter(tiny_csm, tmp_path_factory):
    """A voxlora adapter made on the sesame-layout base, moved off its init (every linear, both heads)."""
    made = new_adapter_for(tiny_csm, WIDE, seed=0)
    gen = torch.Generator().manual_seed(1)
    for _, B in made.lora.values():
        B.normal_(0, 0.05, generator=gen)
    return write_adapter(made, tmp_path_factory.mktemp("adapter") / "a")


@pytest.fixture(scope="module")
def merged(ckpt_with_config, adapter, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "m"
    result = run(lora_merge, "--model", ckpt_with_config, "--adapter", adapter, "-o", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("names", ["csm-mlx", "original"])
def test_the_layout_round_trips_through_mlx_audios_own_sanitize(tiny_csm, names):
    from mlx_audio.tts.models.sesame.sesame import Model

    stored = mlx_ckpt_tensors(tiny_csm, names)
    sanitized = Model.sanitize(None, stored)  # mlx-audio's renaming, keys in the same order
    assert [mlx_layout.sanitize_name(n) for n in stored] == [n.removeprefix("model.") for n in sanitized]
    config = json.loads((tiny_csm / "config.json").read_text())
    dims = mlx_layout.head_dims(config)
    sesame = {
        n: t for n, t in load_file(tiny_csm / "model.safetensors").items() if not n.startswith("codec_")
    }
    back = {}
    for name, t in sanitized.items():
        hf = mlx_layout.view_name(name.removeprefix("model."))
        heads = mlx_layout.rope_heads(hf, t.shape, dims)
        back[hf] = mlx_layout.to_halves(t, heads) if heads else t
    assert sorted(back) == sorted(sesame)
    for name, t in sesame.items():
        np.testing.assert_array_equal(back[name], t, err_msg=name)
    if names == "csm-mlx":  # csm-mlx's own names are mlx-audio's model's: loadable as stored
        native = mlx_csm.SesameModel(mlx_csm.sesame_config(config))
        native.load_weights([(n, mx.array(t)) for n, t in stored.items()], strict=True)


def test_a_ckpt_folder_is_csm_in_the_csm_1b_mlx_layout(tiny_csm, ckpt):
    from voxlora import families
    from voxlora.adapter import model_fingerprint
    from voxlora.families.files import layout, tensor_shapes

    assert sorted(p.name for p in ckpt.iterdir()) == ["README.md", "ckpt.safetensors"]
    assert families.resolve(ckpt).name == "csm" and layout(ckpt) == "csm-1b-mlx"
    assert layout(tiny_csm) == "transformers"
    sesame = {n: s for n, s in tensor_shapes(tiny_csm).items() if not n.startswith("codec_model.")}
    assert tensor_shapes(ckpt) == sesame  # seen under transformers' names, the codec aside
    assert model_fingerprint(ckpt) == model_fingerprint(tiny_csm)


def test_lora_init_makes_the_same_adapter_on_both_layouts(tiny_csm, ckpt, tmp_path):
    records = {}
    for name, base in (("ckpt", ckpt), ("sesame", tiny_csm)):
        result = run(lora_init, "--model", base, "--targets", "all-linear,lm_head", "--train-embeddings",
                     "-o", tmp_path / name)  # fmt: skip
        assert result.exit_code == 0, result.output
        records[name] = json.loads(result.stdout)
    assert {k: v for k, v in records["ckpt"].items() if k not in ("adapter", "model")} == {
        k: v for k, v in records["sesame"].items() if k not in ("adapter", "model")
    }
    a, b = read_adapter(tmp_path / "ckpt"), read_adapter(tmp_path / "sesame")
    assert list(a.lora) == list(b.lora) and sorted(a.trained) == sorted(b.trained)
    for module, (A, B) in a.lora.items():
        assert torch.equal(A, b.lora[module][0]) and torch.equal(B, b.lora[module][1])
    for name, t in a.trained.items():  # embeddings copied from ckpt.safetensors' own tables
        assert torch.equal(t, b.trained[name]), name
    assert a.meta["base_model_fingerprint"] == b.meta["base_model_fingerprint"]
    assert (a.meta["base_layout"], b.meta["base_layout"]) == ("csm-1b-mlx", "transformers")


def test_lora_inspect_reports_fit_and_share_against_a_ckpt_base(tiny_csm, ckpt, adapter):
    on_ckpt = run(lora_inspect, adapter, "--model", ckpt, "--json")
    on_sesame = run(lora_inspect, adapter, "--model", tiny_csm, "--json")
    assert on_ckpt.exit_code == 0 and on_sesame.exit_code == 0, on_ckpt.output + on_sesame.output
    a, b = json.loads(on_ckpt.stdout), json.loads(on_sesame.stdout)
    assert a["problems"] == [] and a["fingerprint_match"] is True and a["layout"] == "csm-1b-mlx"
    assert (a["share"], a["base_params"]) == (b["share"], b["base_params"])


def test_lora_merge_writes_the_ckpt_layout_with_deltas_on_the_interleaved_rows(
    tiny_csm, ckpt_with_config, adapter, merged
):
    base = load_file(ckpt_with_config / "ckpt.safetensors")
    out = load_file(merged / "ckpt.safetensors")
    assert list(out) == list(base) and all(out[n].dtype == base[n].dtype for n in base)
    assert not np.array_equal(out["backbone.layers.0.self_attn.q_proj.weight"],
                              base["backbone.layers.0.self_attn.q_proj.weight"])  # fmt: skip
    assert np.array_equal(out["text_embeddings.weight"], base["text_embeddings.weight"])
    # loaded by the MLX backend: the sesame-layout base with the adapter applied, to fp32 tolerance
    from transformers import CsmConfig

    store = make_store(CsmConfig.from_pretrained(tiny_csm))
    batch = make_batch(store, [0, 1, 2, 3], fraction=1.0)
    reference = mlx_csm.load_mlx_csm(tiny_csm, codec=False)
    mlx_lora.apply_adapter(reference.model, read_adapter(adapter))
    loaded = mlx_csm.load_mlx_csm(merged, codec=False)
    assert loaded.layout == "csm-1b-mlx"
    got, want = mlx_logits(loaded.model, batch), mlx_logits(reference.model, batch)
    np.testing.assert_allclose(got[0], want[0], atol=2e-5)
    np.testing.assert_allclose(got[1], want[1], atol=2e-5)
    plain = mlx_logits(mlx_csm.load_mlx_csm(tiny_csm, codec=False).model, batch)
    assert np.abs(plain[0] - want[0]).max() > 1e-2  # the adapter does change the model


def test_lora_merge_needs_the_config_of_a_model_of_other_sizes(ckpt, adapter, tmp_path):
    result = run(lora_merge, "--model", ckpt, "--adapter", adapter, "-o", tmp_path / "m")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "the weights are not CSM-1B's sizes; put the model's config.json" in result.stderr
    assert not (tmp_path / "m").exists()


def test_lora_merge_refuses_a_trained_audio_table(tiny_csm, ckpt_with_config, tmp_path):
    made = new_adapter_for(tiny_csm, LoraSettings(train_embeddings=True), seed=0)
    write_adapter(made, tmp_path / "e")
    result = run(lora_merge, "--model", ckpt_with_config, "--adapter", tmp_path / "e", "-o", tmp_path / "m")
    assert (
        result.exit_code == 1
        and "keeps one audio table for the backbone and the depth decoder" in result.stderr
    )


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_synth_on_the_merged_ckpt_is_synth_with_base_and_adapter(
    tiny_csm, ckpt_with_config, adapter, merged, backend, tmp_path
):
    common = ["--backend", backend, "--max-seconds", "0.24", "--temperature", "0", "Hello there."]
    runs = {
        "merged": ["--model", merged, "--codec", tiny_csm],
        "direct": ["--model", tiny_csm, "--adapter", adapter],
        # the sesame-made adapter on the csm-1b-mlx base: no --allow-other-base needed
        "ckpt": ["--model", ckpt_with_config, "--codec", tiny_csm, "--adapter", adapter],
    }
    for name, args in runs.items():
        result = run(synth, *args, *common, "-o", tmp_path / f"{name}.wav")
        assert result.exit_code == 0, result.output
    wav = {name: (tmp_path / f"{name}.wav").read_bytes() for name in runs}
    assert wav["merged"] == wav["direct"] == wav["ckpt"]


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_synth_without_codec_is_one_line(ckpt, backend, tmp_path):
    result = run(synth, "--model", ckpt, "--backend", backend, "Hi.", "-o", tmp_path / "x.wav")
    command = "synth" if backend == "mlx" else "the torch backend"
    assert result.exit_code == 1 and result.stderr == f"Error: {ckpt}: {CODEC_MISSING.format(command)} (a " \
        "sesame/csm-1b-layout folder or hub id, e.g. --codec sesame/csm-1b)\n"  # fmt: skip


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("data"), n=4)


TRAIN = ["--optimizer", "sgd", "--lr", 0.05, "--warmup-steps", 0, "--max-steps", 3, "--batch-size", 2,
         "--targets", "q_proj,k_proj,v_proj,lm_head", "--max-grad-norm", 0]  # fmt: skip


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_lora_train_on_a_ckpt_trains_what_the_sesame_base_trains(tiny_csm, ckpt, manifest, backend, tmp_path):
    on_ckpt = run(lora_train, "--model", ckpt, "--codec", tiny_csm, "--manifest", manifest, "-o",
                  tmp_path / "ckpt", "--backend", backend, *TRAIN)  # fmt: skip
    on_sesame = run(lora_train, "--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "sesame",
                    "--backend", backend, *TRAIN)  # fmt: skip
    assert on_ckpt.exit_code == 0 and on_sesame.exit_code == 0, on_ckpt.output + on_sesame.output
    a, b = read_adapter(tmp_path / "ckpt"), read_adapter(tmp_path / "sesame")
    assert list(a.lora) == list(b.lora)
    moved = 0.0
    for module, (A, B) in a.lora.items():
        torch.testing.assert_close(A, b.lora[module][0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(B, b.lora[module][1], atol=1e-5, rtol=1e-4)
        moved = max(moved, float(B.abs().max()))
    assert moved > 1e-4  # it did train
    assert a.meta["base_model_fingerprint"] == b.meta["base_model_fingerprint"]
    assert (a.meta["base_layout"], b.meta["base_layout"]) == ("csm-1b-mlx", "transformers")


def test_lora_train_without_codec_is_one_line(ckpt, manifest, tmp_path):
    result = run(
        lora_train, "--model", ckpt, "--manifest", manifest, "-o", tmp_path / "run", "--backend", "mlx"
    )
    assert result.exit_code == 1 and CODEC_MISSING.format("lora-train") in result.stderr
    assert result.stderr.count("\n") == 1


def test_lora_train_dry_run_on_a_ckpt_estimates_what_the_sesame_base_does(tiny_csm, ckpt, manifest, tmp_path):
    records = []
    for base in (["--model", ckpt, "--codec", tiny_csm], ["--model", tiny_csm]):
        result = run(lora_train, *base, "--manifest", manifest, "-o", tmp_path / "run", "--dry-run")
        assert result.exit_code == 0, result.output
        records.append({k: v for k, v in json.loads(result.stdout).items() if k != "model"})
    assert records[0] == records[1]


def test_a_hub_id_in_the_cache_is_found_as_a_csm_1b_mlx_model(ckpt, monkeypatch, tmp_path):
    """senstella/csm-1b-mlx as the hub cache holds it (offline): ckpt.safetensors and a README, no config."""
    import shutil

    from huggingface_hub import constants
    from voxlora import families
    from voxlora.families.files import layout, tensor_shapes
    from voxlora.modelfolder import model_dir

    repo = tmp_path / "hub" / "models--senstella--csm-1b-mlx"
    shutil.copytree(ckpt, repo / "snapshots" / "10c4a46")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("10c4a46")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_id = "senstella/csm-1b-mlx"
    assert families.resolve(model_dir(hub_id)).name == "csm"
    assert layout(hub_id) == "csm-1b-mlx" and tensor_shapes(hub_id) == tensor_shapes(ckpt)
    result = run(lora_init, "--model", hub_id, "--targets", "attn", "--dry-run")
    assert result.exit_code == 0 and json.loads(result.stdout)["modules"] == 24, result.output
