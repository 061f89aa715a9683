"""synth through click: one TEXT, stdin batches with mixed adapters, JSONL out, logs on stderr,
exit codes and exact one-line errors."""

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from voxlora.backends.torch import adapter_switch
from voxlora.cli.synth import main
from voxlora.synth import synthesizer as synth_module

from tests.unit.test_synth_adapters import BACKBONE_QV, write_peft_adapter


@pytest.fixture(scope="module")
def adapter(tiny_csm, tmp_path_factory):
    return write_peft_adapter(tiny_csm, tmp_path_factory.mktemp("adapters") / "a", 1, BACKBONE_QV)


def synth(model, *args, input=None):
    args = ["--model", str(model), "--max-seconds", "0.24", *map(str, args)]
    return CliRunner().invoke(main.cli, args, input=input)


def jsonl(text):
    return [json.loads(line) for line in text.splitlines()]


def test_one_text_writes_one_wav_and_prints_one_record(tiny_csm, tmp_path):
    result = synth(tiny_csm, "Hello there.", "-o", tmp_path / "hello.wav", "--seed", 4)
    assert result.exit_code == 0, result.output
    [record] = jsonl(result.stdout)
    frames = record["frames"]
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
    assert sf.info(tmp_path / "hello.wav").frames == frames * 1920
    assert f"{tmp_path / 'hello.wav'}: " in result.stderr  # the log line is on stderr, not stdout


def test_stdin_lines_with_mixed_adapters_use_one_base_and_each_adapter_once(
    tiny_csm, adapter, tmp_path, monkeypatch
):
    calls = {"base": 0, "adapters": 0}
    load_csm, read_adapter = synth_module.load_model, adapter_switch.read_adapter

    def counting_load(*a, **k):
        calls["base"] += 1
        return load_csm(*a, **k)

    def counting_read(path):
        calls["adapters"] += 1
        return read_adapter(path)

    monkeypatch.setattr(synth_module, "load_model", counting_load)
    monkeypatch.setattr(adapter_switch, "read_adapter", counting_read)
    lines = [
        "Plain text first.",
        json.dumps({"text": "With the adapter.", "adapter": str(adapter), "id": "u2"}),
        "",
        json.dumps({"text": "Base again.", "adapter": None, "speaker": 1}),
        json.dumps({"text": "Adapter again.", "adapter": str(adapter), "out": str(tmp_path / "named.wav")}),
    ]
    result = synth(tiny_csm, "--out-dir", tmp_path / "gen", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = jsonl(result.stdout)
    assert [r["audio"] for r in records] == [
        str(tmp_path / "gen" / "0001.wav"),
        str(tmp_path / "gen" / "0002.wav"),
        str(tmp_path / "gen" / "0003.wav"),
        str(tmp_path / "named.wav"),
    ]
    assert [r["adapter"] for r in records] == [None, str(adapter), None, str(adapter)]
    assert records[1]["id"] == "u2" and records[2]["speaker"] == 1
    assert calls == {"base": 1, "adapters": 1}
    assert result.stderr.count("adapter loaded, 16 tensors applied") == 1
    for r in records:
        x, sr = sf.read(r["audio"])
        assert sr == 24000 and len(x) == r["frames"] * 1920


def test_the_adapter_option_with_merge(tiny_csm, adapter, tmp_path):
    direct = synth(tiny_csm, "Hi.", "--adapter", adapter, "-o", tmp_path / "d.wav")
    merged = synth(tiny_csm, "Hi.", "--adapter", adapter, "--merge", "-o", tmp_path / "m.wav")
    assert direct.exit_code == merged.exit_code == 0, direct.output + merged.output
    assert jsonl(merged.stdout)[0]["merged"] is True
    assert sf.read(tmp_path / "d.wav")[0].tolist() == sf.read(tmp_path / "m.wav")[0].tolist()


def test_context_clips_from_the_command_line(tiny_csm, tmp_path):
    t = np.arange(12000) / 24000
    sf.write(tmp_path / "ref.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 48000)
    args = [
        "--context",
        tmp_path / "ref.wav",
        "--context-text",
        "A reference.",
        "Hello.",
        "-o",
        tmp_path / "c.wav",
    ]
    result = synth(tiny_csm, *args)
    assert result.exit_code == 0, result.output
    [record] = jsonl(result.stdout)
    assert record["audio"] == str(tmp_path / "c.wav") and record["sample_rate"] == 24000
    plain = synth(tiny_csm, "Hello.", "-o", tmp_path / "p.wav")  # same text and seed, no context
    assert plain.exit_code == 0, plain.output
    with_context, without = sf.read(tmp_path / "c.wav")[0], sf.read(tmp_path / "p.wav")[0]
    assert with_context.shape != without.shape or not np.array_equal(with_context, without)


@pytest.mark.parametrize(
    "args, input, message",
    [
        (["", "-o", "{tmp}/x.wav"], None, "Error: empty text\n"),
        (
            ["Hi.", "-o", "{tmp}/x.wav", "--context", "{tmp}/nope.wav", "--context-text", "Ref."],
            None,
            "Error: {tmp}/nope.wav: context clip: no such file\n",
        ),
        (["--out-dir", "{tmp}/gen", "--strict"], 'ok\n{"text": ""}\n', "Error: <stdin>:2: empty text\n"),
        (
            ["--out-dir", "{tmp}/gen", "--strict"],
            'ok\n{"text": "a",\n',
            "Error: <stdin>:2: not valid JSON (Expecting property name enclosed in double quotes)\n",
        ),
        (
            ["Hi.", "-o", "{tmp}/x.wav", "--adapter", "{tmp}/nope"],
            None,
            "Error: {tmp}/nope: no such adapter folder\n",
        ),
    ],
)
def test_user_errors_are_one_line_and_exit_1(tiny_csm, tmp_path, args, input, message):
    result = synth(tiny_csm, *[a.format(tmp=tmp_path) for a in args], input=input)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] + "\n" == message.format(tmp=tmp_path)
    assert not (tmp_path / "x.wav").exists()


def test_a_bad_line_is_reported_and_every_good_line_still_spoken(tiny_csm, tmp_path):
    result = synth(tiny_csm, "--out-dir", tmp_path / "gen", input='ok\n{"text": 3}\nalso ok\n')
    assert result.exit_code == 1
    assert [r["text"] for r in jsonl(result.stdout)] == ["ok", "also ok"]
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["0001.wav", "0003.wav"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        'Error: <stdin>:2: "text" must be a string, got 3',
        "Error: 1 of 3 lines failed (reported above); the other clips were written",
    ]


def test_a_non_utf8_line_is_reported_and_the_rest_spoken(tiny_csm, tmp_path):
    result = synth(tiny_csm, "--out-dir", tmp_path / "gen", input=b"ok\ncaf\xe9\nalso ok\n")
    assert result.exit_code == 1
    assert [r["text"] for r in jsonl(result.stdout)] == ["ok", "also ok"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        "Error: <stdin>:2: not UTF-8 (byte 0xe9 at column 4)",
        "Error: 1 of 3 lines failed (reported above); the other clips were written",
    ]


def test_strict_stops_the_batch_at_the_first_bad_line(tiny_csm, tmp_path):
    result = synth(tiny_csm, "--out-dir", tmp_path / "gen", "--strict", input='ok\n{"text": 3}\nnever\n')
    assert result.exit_code == 1
    assert [r["audio"] for r in jsonl(result.stdout)] == [str(tmp_path / "gen" / "0001.wav")]
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["0001.wav"]
    assert result.stderr.splitlines()[-1] == 'Error: <stdin>:2: "text" must be a string, got 3'


def test_an_adapter_for_another_model_shape_is_refused(tiny_csm, adapter, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    tensors = load_file(adapter / "adapter_model.safetensors")
    save_file(
        {k: v.repeat(1, 2) if "lora_A" in k else v for k, v in tensors.items()},
        bad / "adapter_model.safetensors",
    )
    result = synth(tiny_csm, "Hi.", "--adapter", bad, "-o", tmp_path / "x.wav")
    assert result.exit_code == 1
    line = result.stderr.splitlines()[-1]
    assert line.startswith(
        f"Error: {bad}: 8 adapter keys do not fit the base: backbone_model.layers.0.self_attn.q_proj: "
    )
    assert "LoRA (64, 128) vs base (64, 64) (out, in)" in line
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    "args, input, message",
    [
        (["Hi."], None, "give -o OUT.wav (or --out-dir) for the clip"),
        (["-o", "x.wav"], "Hi.\n", "-o is for one TEXT"),
        (["Hi.", "-o", "x.wav", "--context", "a.wav"], None, "1 --context clips but 0 --context-text"),
        (["Hi.", "-o", "x.wav", "--temperature", "-1"], None, "--temperature"),
    ],
)
def test_usage_errors_exit_2(tiny_csm, args, input, message):
    result = synth(tiny_csm, *args, input=input)
    assert result.exit_code == 2
    assert message in result.stderr


def test_help_shows_a_piped_example():
    result = CliRunner().invoke(main.cli, ["--help"])
    assert result.exit_code == 0
    assert "synth --model sesame/csm-1b --out-dir gen < lines.txt | mkmanifest -" in result.stdout


def test_backend_mlx_without_mlx_installed_is_one_line_and_exit_1(tiny_csm, tmp_path, monkeypatch):
    import sys

    for name in ("mlx", "mlx.core", "mlx_audio"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError
    result = synth(tiny_csm, "Hi.", "--backend", "mlx", "-o", tmp_path / "x.wav")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: --backend mlx needs mlx and mlx-audio (pip install 'voxlora[mlx]')"
    )
    assert not (tmp_path / "x.wav").exists()


def test_an_unknown_backend_is_a_usage_error(tiny_csm, tmp_path):
    result = synth(tiny_csm, "Hi.", "--backend", "jax", "-o", tmp_path / "x.wav")
    assert result.exit_code == 2
    assert "'jax' is not one of 'auto', 'torch', 'mlx'" in result.stderr
