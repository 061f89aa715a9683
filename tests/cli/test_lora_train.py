"""lora-train through click: metrics JSONL on stdout, the adapter and records in OUT, one-line errors."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from voxlora.cli.lora_train import main

from tests.datagen import speechlike, write_jsonl
from tests.trainkit import make_manifest  # noqa: F401


def train(*args, input=None):
    return CliRunner().invoke(main.cli, list(map(str, args)), input=input)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("data"), n=6)


def test_help_shows_a_pipeline():
    result = train("--help")
    assert result.exit_code == 0
    assert (
        "--manifest - " in result.output
        and "--max-batch-frames" in result.output
        and "--rank" in result.output
    )


def test_trains_and_writes_an_adapter_peft_loads(tiny_csm, manifest, tmp_path):  # noqa: F811
    from peft import PeftModel
    from voxlora.models.csm import load_csm
    from voxlora.peft_bridge import load_adapter_into

    out = tmp_path / "run"
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 4, "--log-every", 2,
                   "--targets", "attn", "--lr", 1e-2)  # fmt: skip
    assert result.exit_code == 0, result.output
    records = lines(result.stdout)
    assert [r.get("step") for r in records] == [2, 4, 4]
    assert records[-1] == {"adapter": str(out), "step": 4, "model": str(tiny_csm)}
    for key in (
        "epoch",
        "loss",
        "backbone_loss",
        "decoder_loss",
        "lr",
        "grad_norm",
        "frames_per_s",
        "audio_s_per_s",
    ):
        assert key in records[0]
    assert lines((out / "metrics.jsonl").read_text()) == records[:-1]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "voxlora-train.json").read_text())["config"]["lr"] == 1e-2
    assert "trained 4 steps" in result.stderr and "6 clips" in result.stderr
    assert (tmp_path / "voxlora-codes").is_dir()  # the codes cache, beside OUT

    inputs = load_csm(tiny_csm).processor.apply_chat_template(
        [{"role": "0", "content": [{"type": "text", "text": "Hello."}, {"type": "audio", "audio": speechlike(0.5)}]}],
        tokenize=True, return_dict=True, output_labels=True,
    )  # fmt: skip
    with torch.no_grad():
        theirs = PeftModel.from_pretrained(load_csm(tiny_csm).model, out).eval()(**inputs)
        ours = load_adapter_into(load_csm(tiny_csm).model, out)[0](**inputs)
        base = load_csm(tiny_csm).model(**inputs)
    assert torch.equal(theirs.logits, ours.logits) and torch.equal(theirs.loss, ours.loss)
    assert not torch.allclose(theirs.logits, base.logits)  # training moved something


def test_manifest_from_stdin(tiny_csm, manifest, tmp_path):  # noqa: F811
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    text = "".join(json.dumps({**r, "audio": str(manifest.parent / r["audio"])}) + "\n" for r in records[:3])
    result = train(
        "--model", tiny_csm, "--manifest", "-", "-o", tmp_path / "run", "--max-steps", 1, input=text
    )
    assert result.exit_code == 0, result.output
    assert lines(result.stdout)[-1]["adapter"] == str(tmp_path / "run") and "3 clips" in result.stderr


def test_checkpoints_validation_and_merged_model(tiny_csm, manifest, tmp_path):  # noqa: F811
    from transformers import CsmForConditionalGeneration

    out = tmp_path / "run"
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 4, "--log-every", 4,
                   "--save-every", 2, "--keep-last", 1, "--save-mode", "both", "--val-manifest", manifest,
                   "--val-every", 2)  # fmt: skip
    assert result.exit_code == 0, result.output
    records = lines(result.stdout)
    assert [r["step"] for r in records if "val_loss" in r] == [2, 4]
    assert records[-1] == {
        "adapter": str(out),
        "merged": str(out / "merged"),
        "step": 4,
        "model": str(tiny_csm),
    }
    assert sorted(p.name for p in out.glob("step_*")) == ["step_0000004"]
    ckpt = out / "step_0000004"
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "trainer_state.json",
        "trainer_state.safetensors",
    ):
        assert (ckpt / name).is_file(), name
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 4
    assert not any(name.endswith(".pt") or name.endswith(".bin") for name in map(str, out.rglob("*")))
    CsmForConditionalGeneration.from_pretrained(out / "merged")
    CsmForConditionalGeneration.from_pretrained(ckpt / "merged")


def test_full_fine_tuning_writes_a_model(tiny_csm, manifest, tmp_path):  # noqa: F811
    from transformers import CsmForConditionalGeneration

    out = tmp_path / "run"
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 1, "--full")
    assert result.exit_code == 0, result.output
    assert lines(result.stdout)[-1] == {"model": str(out), "step": 1}
    model = CsmForConditionalGeneration.from_pretrained(out)
    base = CsmForConditionalGeneration.from_pretrained(tiny_csm)
    assert not torch.equal(model.lm_head.weight, base.lm_head.weight)
    assert (out / "tokenizer.json").is_file() and (out / "chat_template.jinja").is_file()


def test_lora_options_do_not_mix_with_an_adapter(tiny_csm, manifest, tmp_path):  # noqa: F811
    result = train(
        "--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "o", "--adapter", tmp_path, "-r", 4
    )
    assert result.exit_code == 2 and "--rank: LoRA options describe a fresh adapter" in result.output


@pytest.fixture
def lora_init_adapter(tiny_csm, tmp_path):  # noqa: F811
    from voxlora.cli.lora_init import main as lora_init

    result = CliRunner().invoke(lora_init.cli, ["--model", str(tiny_csm), "-o", str(tmp_path / "a0")])
    assert result.exit_code == 0, result.output
    return tmp_path / "a0"


def test_starts_from_a_lora_init_adapter(tiny_csm, manifest, tmp_path, lora_init_adapter):  # noqa: F811
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--adapter",
                   lora_init_adapter, "--max-steps", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == sorted(
        json.loads((lora_init_adapter / "adapter_config.json").read_text())["target_modules"]
    )


def _bad_fingerprint(adapter):
    meta = json.loads((adapter / "voxlora.json").read_text())
    meta["base_fingerprint"] = "sha256:0123456789abcdef"
    (adapter / "voxlora.json").write_text(json.dumps(meta))


def _bad_shape(adapter):
    path = adapter / "adapter_model.safetensors"
    tensors = load_file(path)
    key = "base_model.model.backbone_model.layers.0.self_attn.q_proj.lora_A.weight"
    tensors[key] = torch.zeros(8, 65)
    save_file(tensors, path)


def test_adapter_made_for_another_model(tiny_csm, manifest, tmp_path, lora_init_adapter):  # noqa: F811
    from voxlora.adapter import base_fingerprint

    _bad_fingerprint(lora_init_adapter)
    result = train(
        "--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--adapter", lora_init_adapter
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {lora_init_adapter}: made for another model (base fingerprint sha256:0123456789abcdef, "
        f"{tiny_csm} has {base_fingerprint(tiny_csm)}); add --allow-other-base to apply it anyway\n"
    )


def test_adapter_with_shapes_of_another_model(tiny_csm, manifest, tmp_path, lora_init_adapter):  # noqa: F811
    _bad_shape(lora_init_adapter)
    result = train(
        "--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--adapter", lora_init_adapter
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {lora_init_adapter}: 1 adapter keys do not fit the base: "
        "backbone_model.layers.0.self_attn.q_proj: LoRA (64, 65) vs base (64, 64) (out, in)\n"
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "Error: {manifest}: no clips (the manifest is empty)\n"),
        ("vanished", "Error: {manifest}:2: {audio}: file not found\n"),
        ("bad-line", 'Error: {manifest}:3: missing "text"\n'),
        ("unwritable", "Error: {out}: cannot write the output folder (Not a directory)\n"),
        ("resume", "Error: {out}: nothing to resume (no step_NNNNNNN/ checkpoint in it)\n"),
        (
            "budget",
            "Error: {manifest}:1: {audio}: 53 positions do not fit --max-batch-frames 20; raise the budget or split the clip\n",
        ),
    ],
)
def test_bad_input_is_one_line_before_training(tiny_csm, tmp_path, monkeypatch, case, message):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    manifest = make_manifest(tmp_path, n=3)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    out, extra = tmp_path / "run", []
    if case == "empty":
        manifest.write_text("\n")
    elif case == "vanished":  # with --strict; without, the bad record is skipped (tests/robust)
        (tmp_path / records[1]["audio"]).unlink()
        extra = ["--strict"]
    elif case == "bad-line":
        write_jsonl(manifest, [*records[:2], {"audio": records[2]["audio"]}])
        extra = ["--strict"]
    elif case == "unwritable":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "run"
    elif case == "resume":
        extra = ["--resume"]
    elif case == "budget":
        extra = ["--max-batch-frames", "20", "--strict"]
    result = train("--model", tiny_csm, "--manifest", manifest.name, "-o", out, *extra)
    audio = records[1 if case == "vanished" else 0]["audio"]
    assert result.exit_code == 1, result.output
    assert result.stderr == message.format(manifest=manifest.name, audio=audio, out=out)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
