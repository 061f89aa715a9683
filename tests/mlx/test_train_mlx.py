"""lora-train --backend mlx: the torch trainer's options, records, checkpoints and cache, on MLX.

Every run goes through the real command (click's CliRunner) on the tiny CSM; MLX runs on the CPU
(``mlx[cpu]`` on Linux). The two backends start from the same adapter (same seed) and train on the
same batches, so with plain SGD their loss curves must agree step by step.
"""

import json
import shutil

import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_audio")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from voxlora.cli.lora_train import main  # noqa: E402
from voxlora.train import checkpoint  # noqa: E402

from tests.trainkit import make_manifest  # noqa: E402

METRICS = {"step", "epoch", "loss", "backbone_loss", "decoder_loss", "lr", "grad_norm", "frames_per_s",
           "audio_s_per_s", "pad_fraction"}  # fmt: skip
SGD = ["--optimizer", "sgd", "--lr", 0.05, "--warmup-steps", 0, "--lr-schedule", "constant",
       "--max-grad-norm", 0, "--max-steps", 20, "--log-every", 1, "--batch-size", 2, "--grad-accum", 2,
       "--decoder-frame-fraction", 0.5, "--targets", "q_proj,v_proj,down_proj,lm_head"]  # fmt: skip


def train(*args):
    return CliRunner().invoke(main.cli, [str(a) for a in args])


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("data"), n=6)


@pytest.fixture(scope="module")
def sgd_runs(tiny_csm, manifest, tmp_path_factory):
    """20 plain-SGD steps on each backend from the same fresh adapter, sharing one codes cache."""
    folder = tmp_path_factory.mktemp("sgd")
    runs = {}
    for backend in ("torch", "mlx"):
        out = folder / backend
        result = train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--backend", backend,
                       "--save-every", 10, "--save-mode", "both", "--val-manifest", manifest, "--val-every", 10,
                       *SGD)  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[backend] = (out, lines(result.stdout), result.stderr)
    return runs


def test_sgd_loss_curves_track_torch(sgd_runs):
    torch_records, mlx_records = sgd_runs["torch"][1][:-1], sgd_runs["mlx"][1][:-1]
    assert [r["step"] for r in mlx_records if "loss" in r] == list(range(1, 21))
    assert torch_records[-2]["loss"] < torch_records[0]["loss"] - 0.05  # it learns
    for t, m in zip(torch_records, mlx_records, strict=True):
        assert t.keys() == m.keys() and t["step"] == m["step"]
        if "loss" in t:
            assert abs(t["loss"] - m["loss"]) < 1e-3, (t["step"], t["loss"], m["loss"])
            assert t["lr"] == m["lr"] and t["epoch"] == m["epoch"]
        else:  # validation at steps 10 and 20, every frame through the depth decoder
            assert abs(t["val_loss"] - m["val_loss"]) < 1e-3, (t["step"], t["val_loss"], m["val_loss"])
    assert sum("val_loss" in r for r in mlx_records) == 2


def test_mlx_run_has_the_torch_runs_records_and_layout(sgd_runs):
    (t_out, t_lines, _), (m_out, m_lines, m_err) = sgd_runs["torch"], sgd_runs["mlx"]
    assert set(m_lines[0]) == set(t_lines[0]) == METRICS
    assert m_lines[-1] == {
        "adapter": str(m_out),
        "merged": str(m_out / "merged"),
        "step": 20,
        "model": t_lines[-1]["model"],
    }
    assert lines((m_out / "metrics.jsonl").read_text()) == m_lines[:-1]
    assert (m_out / "merged" / "model.safetensors").is_file()  # --save-mode both: lora-merge's merge
    assert "(0 encoded, 6 from the cache" in m_err  # the torch run's codes, reused
    assert json.loads((m_out / "voxlora-train.json").read_text())["config"]["backend"] == "mlx"
    assert sorted(p.name for p in m_out.iterdir()) == sorted(p.name for p in t_out.iterdir())
    for step in ("step_0000010", "step_0000020"):
        assert sorted(p.name for p in (m_out / step).iterdir()) == sorted(
            p.name for p in (t_out / step).iterdir()
        )
    meta = checkpoint.read_checkpoint(m_out / "step_0000020")[0]
    assert meta["step"] == 20 and meta["config"]["backend"] == "mlx"
    a, b = load_file(m_out / "adapter_model.safetensors"), load_file(t_out / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-3  # the same adapter, trained twice


def test_mlx_adapter_loads_with_peft_and_changes_the_model(tiny_csm, sgd_runs):
    from peft import PeftModel
    from voxlora.models.csm import load_csm

    from tests.datagen import speechlike

    out = sgd_runs["mlx"][0]
    inputs = load_csm(tiny_csm).processor.apply_chat_template(
        [{"role": "0", "content": [{"type": "text", "text": "Hello."}, {"type": "audio", "audio": speechlike(0.5)}]}],
        tokenize=True, return_dict=True, output_labels=True,
    )  # fmt: skip
    with torch.no_grad():
        theirs = PeftModel.from_pretrained(load_csm(tiny_csm).model, out).eval()(**inputs)
        base = load_csm(tiny_csm).model(**inputs)
    assert not torch.allclose(theirs.logits, base.logits)


def test_resume_on_mlx_continues_the_run(tiny_csm, manifest, tmp_path):
    args = ["--model", tiny_csm, "--manifest", manifest, "--backend", "mlx", "--max-steps", 6, "--save-every", 3,
            "--log-every", 1, "--batch-size", 2, "--targets", "attn", "--dropout", 0.1, "--lr", 1e-2,
            "--keep-last", 5]  # fmt: skip
    whole = train(*args, "-o", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "whole", part)
    shutil.rmtree(part / "step_0000006")  # as if killed after step 5: the last checkpoint is step 3
    resumed = train(*args, "-o", part, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming from {part / 'step_0000003'} at step 3" in resumed.stderr
    assert [r["loss"] for r in lines(resumed.stdout)[:-1]] == [r["loss"] for r in lines(whole.stdout)[3:-1]]
    a, b = (
        load_file(part / "adapter_model.safetensors"),
        load_file(tmp_path / "whole" / "adapter_model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in b)  # AdamW moments, step count and dropout all restored


def test_resume_with_the_other_backend_is_refused(tiny_csm, manifest, sgd_runs, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(sgd_runs["torch"][0], out)
    shutil.rmtree(out / "step_0000020")
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--backend", "mlx", "--resume",
                   "--save-mode", "both", *SGD, "--save-every", 10)  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'step_0000010'}: this run differs from the checkpoint's: backend 'mlx' (checkpoint: 'torch')\n"
    )


def test_a_torch_trained_adapter_continues_on_mlx(tiny_csm, manifest, sgd_runs, tmp_path):
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--backend", "mlx",
                   "--adapter", sgd_runs["torch"][0], "--max-steps", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    first = lines(result.stdout)[0]["loss"]
    last = [r for r in sgd_runs["torch"][1] if "loss" in r][-1]["loss"]
    assert abs(first - last) < 0.5  # starts near where torch left off


def _bad_fingerprint(adapter):
    meta = json.loads((adapter / "voxlora.json").read_text())
    meta["base_fingerprint"] = "sha256:0123456789abcdef"
    (adapter / "voxlora.json").write_text(json.dumps(meta))
    return (
        "made for another model (base fingerprint sha256:0123456789abcdef, {model} has {ours}); "
        "add --allow-other-base to apply it anyway"
    )


def _bad_shape(adapter):
    path = adapter / "adapter_model.safetensors"
    tensors = load_file(path)
    key = "base_model.model.backbone_model.layers.0.self_attn.q_proj.lora_A.weight"
    tensors[key] = torch.zeros(tensors[key].shape[0], 65)
    save_file(tensors, path)
    return (
        "1 adapter keys do not fit the base: "
        "backbone_model.layers.0.self_attn.q_proj: LoRA (64, 65) vs base (64, 64) (out, in)"
    )


@pytest.mark.parametrize("spoil", [_bad_fingerprint, _bad_shape])
def test_an_adapter_that_does_not_fit_is_refused(tiny_csm, manifest, sgd_runs, tmp_path, spoil):
    from voxlora.adapter import base_fingerprint

    adapter = tmp_path / "a"
    shutil.copytree(sgd_runs["mlx"][0], adapter)
    message = spoil(adapter).format(model=tiny_csm, ours=base_fingerprint(tiny_csm))
    result = train("--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--backend", "mlx",
                   "--adapter", adapter)  # fmt: skip
    assert result.exit_code == 1 and result.stderr == f"Error: {adapter}: {message}\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--full"], "--full is not available with --backend mlx; train an adapter, or use --backend torch"),
        (["--dtype", "fp16"], "--dtype fp16 needs torch's loss scaling; with --backend mlx use bf16 or fp32"),
    ],
)
def test_what_mlx_cannot_do_is_one_line(tiny_csm, manifest, tmp_path, extra, message):
    result = train(
        "--model", tiny_csm, "--manifest", manifest, "-o", tmp_path / "run", "--backend", "mlx", *extra
    )
    assert result.exit_code == 1 and result.stderr == f"Error: {message}\n"


def test_codec_alone_is_the_csm_codec(tiny_csm):
    """lora-train --backend mlx reads only the codec's tensors: the same Mimi, weight for weight."""
    import torch
    from voxlora.families.csm.train_mlx import load_codec_bundle
    from voxlora.models.csm import load_csm

    alone = load_codec_bundle(tiny_csm).codec.state_dict()
    full = load_csm(tiny_csm).codec.state_dict()
    assert alone.keys() == full.keys()
    for name, t in full.items():
        assert torch.equal(alone[name], t), name
