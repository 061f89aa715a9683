"""--tensorboard writes events tensorboard's own reader reads; --wandb without wandb is one line; the
steps bar shows the total, the rate and the ETA."""

import io
import json
import re
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from voxlora.cli.lora_train import main
from voxlora.train.trackers import scalars

from tests.trainkit import make_manifest


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "audio": 0})
    acc.Reload()
    return acc


def test_tensorboard_scalars_mirror_the_metrics(tiny_csm, tmp_path):
    manifest = make_manifest(tmp_path, n=4)
    val = make_manifest(tmp_path, n=2, name="val.jsonl", seed=1)
    out, tb = tmp_path / "run", tmp_path / "tb"
    result = CliRunner().invoke(main.cli, list(map(str, [
        "--model", tiny_csm, "--manifest", manifest, "--val-manifest", val, "-o", out, "--max-steps", 3,
        "--log-every", 1, "--tensorboard", tb])))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    acc = events(tb)
    for name in ("loss", "backbone_loss", "decoder_loss", "lr", "grad_norm", "frames_per_s", "audio_s_per_s"):
        logged = [(e.step, e.value) for e in acc.Scalars(f"train/{name}")]
        assert logged == [(r["step"], pytest.approx(r[name], rel=1e-6)) for r in lines if "loss" in r]
    assert [e.step for e in acc.Scalars("val/val_loss")] == [3]


def test_audio_samples_are_tensorboard_audio(tmp_path):
    import soundfile as sf
    from voxlora.train.trackers import Trackers

    folder = tmp_path / "samples" / "step_0000020"  # what --sample-every writes, and its metrics line
    folder.mkdir(parents=True)
    sf.write(
        folder / "01.wav", (0.1 * np.sin(np.arange(2400) / 5)).astype(np.float32), 24000, subtype="PCM_16"
    )
    trackers = Trackers(tensorboard=str(tmp_path / "tb"))
    trackers.log({"step": 20, "samples": str(folder), "wer": 0.25, "speaker_sim": 0.8})
    trackers.close()
    acc = events(tmp_path / "tb")
    (sample,) = acc.Audio("samples/01")
    assert sample.step == 20 and sample.sample_rate == 24000 and sample.length_frames == 2400
    assert [(e.step, e.value) for e in acc.Scalars("eval/wer")] == [(20, 0.25)]


def test_wandb_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # not importable, whatever this machine has
    (tmp_path / "t.jsonl").write_text("")
    result = CliRunner().invoke(main.cli, ["--model", "m", "--manifest", "t.jsonl", "-o", str(tmp_path / "o"),
                                           "--wandb", "voice"])  # fmt: skip
    assert result.exit_code == 1
    assert result.output == "Error: --wandb: wandb is not installed (pip install wandb)\n"


def wandb_history(run_file) -> list[dict]:
    """The ``run.log`` rows of an offline run's ``run-ID.wandb``, decoded with wandb's own protobuf.

    wandb (0.31) has no Python reader of its run files; the file is a LevelDB log (a 7-byte
    ``:W&B`` header, then 32 KiB blocks of records: crc32 u32, length u16, type u8 FULL=1 FIRST=2
    MIDDLE=3 LAST=4), each record a ``wandb_internal_pb2.Record``.
    """
    import struct

    from wandb.proto import wandb_internal_pb2

    data, rows, pos, parts = run_file.read_bytes(), [], 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's trailer
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record.FromString(parts)
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
                )
    return rows


def test_wandb_offline_rows_mirror_the_metrics(tiny_csm, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb (the [track] extra) logs --wandb runs")
    monkeypatch.setenv("WANDB_MODE", "offline")  # no network: the run stays in WANDB_DIR
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    manifest = make_manifest(tmp_path, n=2)
    out = tmp_path / "run"
    result = CliRunner().invoke(main.cli, list(map(str, [
        "--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 2, "--log-every", 1,
        "--wandb", "voice"])))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    rows = wandb_history(run_file)
    expected = [(r["step"], scalars(r)) for r in lines if "loss" in r]
    assert len(expected) == 2 and "train/loss" in expected[0][1]
    logged = [(row["_step"], {k: v for k, v in row.items() if not k.startswith("_")}) for row in rows]
    assert logged == [(step, pytest.approx(values, rel=1e-6)) for step, values in expected]


def test_the_steps_bar_shows_total_rate_and_eta():
    from voxlora.train.progress import Bars

    shown = io.StringIO()
    bars = Bars(True, file=shown)
    bars.total(10, 2)  # a resumed run: 2 of 10 steps done
    for _ in range(3):
        time.sleep(0.01)
        bars.step(None)
    text = str(bars.bars["train"])  # what the terminal shows now
    bars.close()
    assert "5/10" in text and "step/s" in text and re.search(r"\[00:00<00:0\d", text), text  # elapsed<ETA
