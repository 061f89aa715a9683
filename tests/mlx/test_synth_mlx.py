"""synth --backend mlx: WAVs and records as on torch, seeds reproduce, greedy codes equal torch's (base,
adapter, merged, context), mismatched adapters refused, one base and each adapter once per run."""

import json

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_audio")

import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from voxlora.backends.mlx import adapters as synth_mlx_adapters  # noqa: E402
from voxlora.cli.synth import main  # noqa: E402
from voxlora.synth import synthesizer as synth_module  # noqa: E402
from voxlora.synth.config import SynthConfig  # noqa: E402
from voxlora.synth.requests import ContextClip, Request  # noqa: E402
from voxlora.synth.synthesizer import Synthesizer  # noqa: E402

from tests.unit.test_synth_adapters import (  # noqa: E402
    BACKBONE_QV,
    DECODER_QV,
    _bad_adapters,
    write_embedding_adapter,
    write_peft_adapter,
)


@pytest.fixture(scope="module")
def adapters(tiny_csm, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "a": str(write_peft_adapter(tiny_csm, root / "a", 1, BACKBONE_QV + DECODER_QV)),
        "e": str(write_embedding_adapter(tiny_csm, root / "e", 3)),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A context clip: 0.5 s of a tone at 24 kHz."""
    path = tmp_path_factory.mktemp("ref") / "ref.wav"
    t = np.arange(12000) / 24000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 24000)
    return str(path)


def greedy(tiny_csm, backend, merge=False):
    return Synthesizer(
        SynthConfig(model=str(tiny_csm), backend=backend, merge=merge, temperature=0, max_seconds=0.4)
    )


@pytest.fixture(scope="module")
def greedy_synths(tiny_csm):
    return {(b, m): greedy(tiny_csm, b, m) for b in ("torch", "mlx") for m in (False, True)}


@pytest.fixture(scope="module")
def sampler(tiny_csm):
    return Synthesizer(SynthConfig(model=str(tiny_csm), backend="mlx", max_seconds=0.24))


def speak(synth, tmp_path, text="Hello there.", name="x.wav", **kw):
    return synth.speak(Request(text=text, out=tmp_path / name, **kw))


def synth_cli(model, *args, input=None):
    args = ["--backend", "mlx", "--model", str(model), "--max-seconds", "0.24", *map(str, args)]
    return CliRunner().invoke(main.cli, args, input=input)


def test_one_text_writes_a_wav_of_the_right_rate_and_length_and_one_record(tiny_csm, tmp_path):
    result = synth_cli(tiny_csm, "Hello there.", "-o", tmp_path / "hello.wav", "--seed", 4)
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    frames = record["frames"]
    assert 1 <= frames <= 3  # --max-seconds 0.24 holds: 3 frames of 0.08 s at most
    info = sf.info(tmp_path / "hello.wav")
    assert (info.samplerate, info.frames, info.subtype) == (24000, frames * 1920, "PCM_16")
    assert record == {
        "text": "Hello there.",
        "audio": str(tmp_path / "hello.wav"),
        "speaker": 0,
        "duration": round(frames * 0.08, 3),
        "sample_rate": 24000,
        "adapter": None,
        "merged": False,
        "seed": 4,
        "frames": frames,
        "ended": record["ended"],
    }
    assert "(mlx)" in result.stderr


def test_the_same_seed_gives_the_same_codes_and_another_seed_others(sampler, tmp_path):
    a = speak(sampler, tmp_path, seed=3)
    speak(sampler, tmp_path, text="Something else entirely.", seed=4)
    b = speak(sampler, tmp_path, seed=3)
    c = speak(sampler, tmp_path, seed=4)
    assert torch.equal(a.codes, b.codes) and not torch.equal(a.codes, c.codes)
    assert len(a.codes) <= 3 and int(a.codes.max()) < 64


@pytest.mark.parametrize("adapter", [None, "a", "e"])
@pytest.mark.parametrize("with_context", [False, True], ids=["plain", "context"])
def test_greedy_codes_equal_torchs_direct_and_merged(
    greedy_synths, adapters, reference, tmp_path, adapter, with_context
):
    context = [ContextClip(reference, "A reference.")] if with_context else []
    path = adapters[adapter] if adapter else None
    codes = {k: speak(s, tmp_path, adapter=path, context=context).codes for k, s in greedy_synths.items()}
    expected = codes["torch", False]
    assert len(expected) >= 1
    assert all(torch.equal(expected, c) for c in codes.values()), {k: c[:, 0] for k, c in codes.items()}


def test_the_adapter_and_the_context_change_the_greedy_codes(greedy_synths, adapters, reference, tmp_path):
    mlx = greedy_synths["mlx", False]
    base = speak(mlx, tmp_path).codes
    assert not torch.equal(base, speak(mlx, tmp_path, adapter=adapters["a"]).codes)
    assert not torch.equal(base, speak(mlx, tmp_path, context=[ContextClip(reference, "A ref.")]).codes)


def test_switching_back_restores_the_base_weights_exactly(greedy_synths, adapters):
    model = greedy_synths["mlx", True].bundle.model
    greedy_synths["mlx", True].adapters.use(None)
    before = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    greedy_synths["mlx", True].adapters.use(adapters["e"])
    greedy_synths["mlx", True].adapters.use(None)
    after = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("merge", [[], ["--merge"]], ids=["direct", "merged"])
def test_an_adapter_that_does_not_fit_the_base_is_refused_with_its_keys(tiny_csm, tmp_path, merge):
    missing, _ = _bad_adapters(tiny_csm, tmp_path)
    result = synth_cli(tiny_csm, *merge, "Hi.", "--adapter", missing, "-o", tmp_path / "x.wav")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {missing}: 2 adapter keys do not fit the base: "
        "backbone_model.layers.9.self_attn.q_proj: no such module in the base (would be skipped); "
        "backbone_model.layers.9.self_attn.v_proj: no such module in the base (would be skipped)"
    )
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("merge", [[], ["--merge"]], ids=["direct", "merged"])
def test_a_batch_with_two_adapters_loads_the_base_once_and_each_adapter_once(
    tiny_csm, adapters, tmp_path, monkeypatch, merge
):
    calls = {"base": 0, "adapters": []}
    load_csm, read_adapter = synth_module.load_model, synth_mlx_adapters.read_adapter

    def counting_load(*args, **kwargs):
        calls["base"] += 1
        return load_csm(*args, **kwargs)

    def counting_read(path):
        calls["adapters"].append(path)
        return read_adapter(path)

    monkeypatch.setattr(synth_module, "load_model", counting_load)
    monkeypatch.setattr(synth_mlx_adapters, "read_adapter", counting_read)
    order = [None, adapters["a"], adapters["e"], None, adapters["a"], adapters["e"]]
    lines = "".join(json.dumps({"text": "Hello there.", "adapter": a}) + "\n" for a in order)
    result = synth_cli(tiny_csm, *merge, "--out-dir", tmp_path / "gen", input=lines)
    assert result.exit_code == 0, result.output
    assert calls == {"base": 1, "adapters": [adapters["a"], adapters["e"]]}
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["adapter"] for r in records] == order
    wavs = [open(r["audio"], "rb").read() for r in records]
    assert wavs[0] == wavs[3] and wavs[1] == wavs[4] and wavs[2] == wavs[5]  # the base comes back exactly
    assert len({wavs[0], wavs[1], wavs[2]}) == 3
