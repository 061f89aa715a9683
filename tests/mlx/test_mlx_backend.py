"""The MLX backend computes what the torch backend computes, and shares its one adapter format.

Both backends load the same tiny CSM (sesame/csm-1b layout) and are given the same batches from the
shared batch builder; MLX runs on the CPU (``mlx[cpu]`` on Linux).
"""

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_audio")

import torch  # noqa: E402
from voxlora.adapter import read_adapter, write_adapter  # noqa: E402
from voxlora.backends.mlx import csm as mlx_csm  # noqa: E402
from voxlora.backends.mlx import lora as mlx_lora  # noqa: E402
from voxlora.backends.mlx import loss as mlx_loss  # noqa: E402
from voxlora.backends.mlx import mimi as mlx_mimi  # noqa: E402
from voxlora.backends.mlx.train import Stepper  # noqa: E402
from voxlora.errors import VoxloraError  # noqa: E402
from voxlora.families.csm.batches import make_batch  # noqa: E402
from voxlora.families.csm.loss import csm_loss, unwrap  # noqa: E402
from voxlora.families.csm.sequences import Clip, build_store  # noqa: E402
from voxlora.lora_options import LoraSettings  # noqa: E402
from voxlora.models.csm import load_csm  # noqa: E402
from voxlora.peft_bridge import apply_adapter, new_adapter_for  # noqa: E402

LR = 0.05  # plain SGD on the tiny model: learns in 20 steps without diverging
WIDE = LoraSettings(targets=("all-linear", "lm_head", "projection"), train_embeddings=True)


def make_store(config, n: int = 4, seed: int = 0):
    """n clips of random codes (varied lengths) laid out as the trainer lays them out."""
    gen = torch.Generator().manual_seed(seed)
    k = int(config.num_codebooks)
    clips = [
        Clip(
            where=f"clip{i}",
            text_ids=[256, *torch.randint(32, 127, (3 + i,), generator=gen).tolist(), 257],
            codes=torch.randint(0, 64, (k, 4 + 3 * i), generator=gen, dtype=torch.int16),
        )
        for i in range(n)
    ]
    return build_store(clips, config, 12.5)


@pytest.fixture(scope="module")
def torch_bundle(tiny_csm):
    return load_csm(tiny_csm)


@pytest.fixture(scope="module")
def store(torch_bundle):
    return make_store(torch_bundle.config)


@pytest.fixture
def mlx_bundle(tiny_csm):
    return mlx_csm.load_mlx_csm(tiny_csm, codec=False)


def trained_adapter(folder, settings=WIDE, seed=0):
    """A fresh adapter moved off its init: non-zero B and changed embeddings, so it changes the model."""
    adapter = new_adapter_for(folder, settings, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for _, B in adapter.lora.values():
        B.normal_(0, 0.05, generator=gen)
    for t in adapter.trained.values():
        t.add_(torch.randn(t.shape, generator=gen) * 0.05)
    return adapter


@torch.no_grad()
def torch_logits(model, batch):
    """Backbone logits at the loss's positions and depth-decoder logits of the chosen frames (torch)."""
    from voxlora.families.csm.loss import _audio_embeddings
    from voxlora.families.csm.sequences import EOS, FRAME

    csm = unwrap(model)
    audio = (batch.kind == FRAME) | (batch.kind == EOS)
    x = csm.embed_text_tokens(batch.tokens)
    x = x.masked_scatter(
        audio.unsqueeze(-1), _audio_embeddings(csm.backbone_model.embed_tokens, batch.codes[audio])
    )
    h = csm.backbone_model(inputs_embeds=x, use_cache=False).last_hidden_state
    logits = csm.lm_head(h[:, :-1][audio[:, 1:]])
    chosen = batch.decoder[:, 1:]
    codes = batch.codes[:, 1:][chosen]
    ids = torch.nn.functional.pad(codes[:, :-1], (1, 0))
    hd = csm.depth_decoder.model(
        input_ids=ids, backbone_last_hidden_state=h[:, :-1][chosen]
    ).last_hidden_state
    dec = torch.einsum("fkh,khv->fkv", hd[:, 1:], csm.depth_decoder.codebooks_head.weight)
    return logits.numpy(), dec.numpy()


def mlx_logits(model, batch):
    logits, dec = mlx_loss.forward_logits(model, mlx_loss.batch_arrays(batch))
    return np.array(logits), np.array(dec)


def test_same_loss_as_torch(torch_bundle, mlx_bundle, store):
    batch = make_batch(store, [0, 1, 2, 3], fraction=0.5, seed=3)
    with torch.no_grad():
        tb, td = csm_loss(torch_bundle.model, batch)
    mb, md = mlx_loss.csm_loss(mlx_bundle.model, batch)
    assert abs(float(tb) / batch.n_backbone - float(mb) / batch.n_backbone) < 1e-4
    assert abs(float(td) / batch.n_decoder - float(md) / batch.n_decoder) < 1e-4


def test_same_logits_with_the_same_adapter(tiny_csm, mlx_bundle, store):
    adapter = trained_adapter(tiny_csm)
    torch_model, _ = apply_adapter(load_csm(tiny_csm).model, adapter)
    mlx_lora.apply_adapter(mlx_bundle.model, adapter)
    batch = make_batch(store, [1, 3], fraction=1.0)
    t_logits, t_dec = torch_logits(torch_model, batch)
    m_logits, m_dec = mlx_logits(mlx_bundle.model, batch)
    base_logits, _ = torch_logits(load_csm(tiny_csm).model, batch)
    assert np.abs(t_logits - base_logits).max() > 1e-2  # the adapter does change the model
    np.testing.assert_allclose(m_logits, t_logits, atol=1e-4)
    np.testing.assert_allclose(m_dec, t_dec, atol=1e-4)


def test_fresh_adapters_are_identical_on_both_backends(tiny_csm, mlx_bundle):
    ours, theirs = mlx_lora.new_adapter(mlx_bundle, WIDE, seed=5), new_adapter_for(tiny_csm, WIDE, seed=5)
    assert list(ours.lora) == list(theirs.lora) and set(ours.trained) == set(theirs.trained)
    for m, (A, B) in theirs.lora.items():
        assert torch.equal(ours.lora[m][0], A) and torch.equal(ours.lora[m][1], B)
    for name, t in theirs.trained.items():
        assert torch.equal(ours.trained[name], t)


def torch_sgd(model, micro_steps, lr):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    losses = []
    for micro in micro_steps:
        nb, nd = sum(b.n_backbone for b in micro), sum(b.n_decoder for b in micro)
        opt.zero_grad()
        total = 0.0
        for batch in micro:
            b, d = csm_loss(model, batch)
            value = b / nb + d / nd
            value.backward()
            total += float(value)
        opt.step()
        losses.append(total)
    return losses


def test_sgd_training_tracks_torch(tiny_csm, store):
    from types import SimpleNamespace

    settings = LoraSettings(targets=("q_proj", "v_proj", "down_proj", "lm_head"))
    adapter = new_adapter_for(tiny_csm, settings, seed=0)
    steps = [
        [make_batch(store, [i % 4], 0.5, seed=0, epoch=i), make_batch(store, [(i + 1) % 4], 0.5, 0, i)]
        for i in range(20)
    ]
    torch_model, _ = apply_adapter(load_csm(tiny_csm).model, read_adapter_copy(adapter), trainable=True)
    torch_model.train()
    t_losses = torch_sgd(torch_model, steps, lr=LR)

    bundle = mlx_csm.load_mlx_csm(tiny_csm, codec=False)
    mlx_lora.apply_adapter(bundle.model, adapter, trainable=True)
    config = SimpleNamespace(optimizer="sgd", lr=LR, weight_decay=0.0, max_grad_norm=None)
    stepper = Stepper(bundle.model, config)
    m_losses = []
    for micro in steps:
        r = stepper.step(micro, lr=LR)
        nb, nd = sum(b.n_backbone for b in micro), sum(b.n_decoder for b in micro)
        m_losses.append(r.backbone / nb + r.decoder / nd)
    assert t_losses[-1] < t_losses[0] - 0.05  # it learns
    np.testing.assert_allclose(m_losses, t_losses, atol=1e-3)


def read_adapter_copy(adapter):
    """A deep copy (peft trains the tensors it is given in place)."""
    from dataclasses import replace

    return replace(
        adapter,
        lora={m: (A.clone(), B.clone()) for m, (A, B) in adapter.lora.items()},
        trained={n: t.clone() for n, t in adapter.trained.items()},
    )


def test_mlx_trained_adapter_loads_with_peft(tiny_csm, mlx_bundle, store, tmp_path):
    from types import SimpleNamespace

    from peft import PeftModel

    adapter = mlx_lora.new_adapter(mlx_bundle, WIDE, seed=0)
    mlx_lora.apply_adapter(mlx_bundle.model, adapter, trainable=True)
    stepper = Stepper(
        mlx_bundle.model, SimpleNamespace(optimizer="adamw", lr=1e-2, weight_decay=0.0, max_grad_norm=1.0)
    )
    for i in range(3):
        stepper.step([make_batch(store, [0, 2], 0.5, seed=0, epoch=i)], lr=1e-2)
    trained = mlx_lora.adapter_from_model(mlx_bundle.model, like=adapter)
    assert max(float(B.abs().max()) for _, B in trained.lora.values()) > 0  # B moved off zero
    write_adapter(trained, tmp_path / "a")
    assert read_adapter(tmp_path / "a").meta["backend"] == "mlx"

    peft_model = PeftModel.from_pretrained(load_csm(tiny_csm).model, tmp_path / "a")
    batch = make_batch(store, [1, 2], fraction=1.0)
    mlx_bundle.model.eval()
    t_logits, t_dec = torch_logits(peft_model, batch)
    m_logits, m_dec = mlx_logits(mlx_bundle.model, batch)
    np.testing.assert_allclose(m_logits, t_logits, atol=1e-4)
    np.testing.assert_allclose(m_dec, t_dec, atol=1e-4)

    # and back: the written adapter, read again, gives MLX the same logits
    fresh = mlx_csm.load_mlx_csm(tiny_csm, codec=False)
    mlx_lora.load_adapter_into(fresh.model, tmp_path / "a")
    np.testing.assert_allclose(mlx_logits(fresh.model, batch)[0], m_logits, atol=1e-5)


def test_an_adapter_for_another_base_is_refused_by_both(tiny_csm, mlx_bundle):
    adapter = new_adapter_for(tiny_csm, LoraSettings(), seed=0)
    module = next(iter(adapter.lora))
    A, B = adapter.lora[module]
    adapter.lora[module] = (torch.zeros(A.shape[0], A.shape[1] * 2), B)  # made for a wider model
    adapter.lora["backbone_model.layers.9.self_attn.q_proj"] = (A, B)  # a layer this base lacks
    with pytest.raises(VoxloraError, match="2 adapter keys do not fit") as mlx_error:
        mlx_lora.apply_adapter(mlx_bundle.model, adapter)
    assert "layers.9" in str(mlx_error.value) and module in str(mlx_error.value)
    assert not mlx_lora.lora_layers(mlx_bundle.model)  # refused before anything changed
    with pytest.raises(VoxloraError, match="2 adapter keys do not fit"):
        apply_adapter(load_csm(tiny_csm).model, adapter)


def test_remove_adapter_gives_the_base_back(tiny_csm, mlx_bundle, store):
    batch = make_batch(store, [0, 1], fraction=1.0)
    before = mlx_logits(mlx_bundle.model, batch)
    mlx_lora.apply_adapter(mlx_bundle.model, trained_adapter(tiny_csm))
    assert np.abs(mlx_logits(mlx_bundle.model, batch)[0] - before[0]).max() > 1e-2
    mlx_lora.remove_adapter(mlx_bundle.model)
    np.testing.assert_array_equal(mlx_logits(mlx_bundle.model, batch)[0], before[0])
    assert "decoder_audio_embeddings" not in mlx_bundle.model


def test_csm_1b_mlx_layout_loads_to_the_same_model(tiny_csm, mlx_bundle, store, tmp_path):
    from mlx_audio.tts.models.sesame.sesame import Model, SesameModel
    from safetensors.numpy import load_file

    from tests.fixtures.mlx_ckpt import write_mlx_ckpt

    # csm-1b-mlx's layout with Sesame's original names, interleaved RoPE rows (config.json beside it)
    folder = write_mlx_ckpt(tiny_csm, tmp_path / "csm-1b-mlx", names="original", config=True)
    loaded = mlx_csm.load_mlx_csm(folder)
    assert loaded.layout == "csm-1b-mlx" and loaded.codec is None
    batch = make_batch(store, [0, 3], fraction=1.0)
    np.testing.assert_allclose(
        mlx_logits(loaded.model, batch)[0], mlx_logits(mlx_bundle.model, batch)[0], atol=1e-5
    )

    # mlx-audio's own model (interleaved RoPE) on the original rows computes the same backbone
    native = SesameModel(mlx_csm.sesame_config(mlx_bundle.config))
    native.load_weights(
        [
            (k.removeprefix("model."), mx.array(v))
            for k, v in Model.sanitize(None, load_file(folder / "ckpt.safetensors")).items()
        ]
    )
    arrays = mlx_loss.batch_arrays(batch)
    np.testing.assert_allclose(
        np.array(mlx_loss.backbone_hidden(native, arrays)),
        np.array(mlx_loss.backbone_hidden(mlx_bundle.model, arrays)),
        atol=1e-4,
    )


def test_mimi_encodes_and_decodes_as_torch(tiny_csm):  # noqa: F811
    from voxlora.backends.torch.codec import encode
    from voxlora.families.csm.sample import decode

    torch_bundle, bundle = load_csm(tiny_csm), mlx_csm.load_mlx_csm(tiny_csm)
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(1920 * 5) * 0.1).astype(np.float32)
    np.testing.assert_array_equal(
        mlx_mimi.encode(bundle.codec, samples), encode(torch_bundle.codec, samples).numpy()
    )
    codes = rng.integers(0, 64, (6, 32))
    wave = mlx_mimi.decode(bundle.codec, codes)
    assert wave.shape == (6 * 1920,) and mlx_mimi.frame_size(bundle.codec) == 1920
    np.testing.assert_allclose(wave, decode(torch_bundle.codec, torch.from_numpy(codes)), atol=1e-4)


def test_a_folder_whose_weights_do_not_fit_its_config_is_refused(tiny_csm, tmp_path):
    import json
    import shutil

    folder = tmp_path / "bad"
    shutil.copytree(tiny_csm, folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 5
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(VoxloraError, match="backbone.layers.4.*missing"):
        mlx_csm.load_mlx_csm(folder, codec=False)


def test_greedy_generation_matches_torch_and_makes_a_wav(tiny_csm, tmp_path):  # noqa: F811
    import soundfile as sf
    from voxlora.audio import write_wav
    from voxlora.backends.mlx.generate import generate_codes
    from voxlora.families.csm.prompt import Turn, build_inputs
    from voxlora.families.csm.sample import generate_codes as torch_generate
    from voxlora.families.csm.sample import trim_at_eos

    torch_bundle, bundle = load_csm(tiny_csm), mlx_csm.load_mlx_csm(tiny_csm)
    inputs = build_inputs(torch_bundle.processor, [Turn("Hello there.", 0)], torch_bundle.sample_rate)
    tokens = inputs["input_ids"][0].numpy()
    expected = torch_generate(torch_bundle.model, inputs, 5, 0, 0).numpy()
    np.testing.assert_array_equal(generate_codes(bundle.model, tokens, 5, 64, temperature=0), expected)

    codes = generate_codes(bundle.model, tokens, 6, 64, temperature=0.9, top_k=50, seed=1)
    assert codes.shape[1] == 32 and codes.max() < 64  # ids the codec cannot decode are never sampled
    codes, _ = trim_at_eos(torch.from_numpy(codes))
    write_wav(tmp_path / "a.wav", mlx_mimi.decode(bundle.codec, codes.numpy()), bundle.sample_rate)
    info = sf.info(tmp_path / "a.wav")
    assert info.samplerate == 24000 and info.frames == len(codes) * 1920
