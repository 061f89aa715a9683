"""lora-train's data-driven defaults (epochs, warm-up, depth-decoder share) and its timed checkpoints."""

import json

from click.testing import CliRunner
from voxlora.cli.lora_train import main
from voxlora.train import data_defaults
from voxlora.train.autosave import Due
from voxlora.train.config import TrainConfig, resolve

from tests.trainkit import make_manifest


def _train(*args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_20_clip_set_gets_a_short_warm_up_and_reaches_its_peak_rate(tiny_csm, tmp_path):
    manifest = make_manifest(tmp_path / "data", n=20, seconds=0.2)
    out = tmp_path / "run"
    result = _train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--batch-size", 20,
                    "--log-every", 1, "--lr", 1e-3, "--targets", "q_proj")  # fmt: skip
    assert result.exit_code == 0, result.output
    steps = [r for r in _lines(result.stdout) if "loss" in r]
    config = json.loads((out / "voxlora-train.json").read_text())["config"]
    # 20 clips: 800 clip-visits -> 40 passes; 1 step per pass at batch 20 -> 40 steps, 5% warm-up
    assert (config["epochs"], len(steps), config["warmup_steps"]) == (40, 40, 2)
    assert config["decoder_frame_fraction"] == 1.0  # a few seconds of audio: every frame
    assert sorted(config["auto"]) == ["decoder_frame_fraction", "epochs", "warmup_steps"]
    lrs = [r["lr"] for r in steps]
    assert lrs[: config["warmup_steps"]] == sorted(lrs[: config["warmup_steps"]])  # rising
    assert max(lrs) == 1e-3 and lrs.index(1e-3) == config["warmup_steps"]  # the peak, right after
    for chosen in ("epochs 40", "warmup_steps 2 (0.05 of 40 steps)", "decoder_frame_fraction 1 (all frames"):
        assert f"chosen from the data: {chosen}" in result.stderr


def test_given_values_are_kept(tiny_csm, tmp_path):
    manifest = make_manifest(tmp_path / "data", n=4, seconds=0.3)
    out = tmp_path / "run"
    result = _train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 2,
                    "--warmup-steps", 0, "--decoder-frame-fraction", 0.5, "--targets", "q_proj")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "voxlora-train.json").read_text())["config"]
    assert (config["warmup_steps"], config["decoder_frame_fraction"], config["auto"]) == (0, 0.5, ["epochs"])
    assert "chosen from the data" not in result.stderr  # epochs do not count under --max-steps


def test_a_checkpoint_exists_after_the_first_interval(tiny_csm, tmp_path):
    manifest = make_manifest(tmp_path / "data", n=4, seconds=0.3)
    out = tmp_path / "run"
    # an interval of 1 ms: every step is past it
    result = _train("--model", tiny_csm, "--manifest", manifest, "-o", out, "--max-steps", 3,
                    "--save-minutes", 1 / 60000, "--keep-last", 5, "--targets", "q_proj")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("step_*")) == ["step_0000001", "step_0000002", "step_0000003"]


def test_due_every_n_steps_or_m_minutes_whichever_first():
    now = [0.0]
    due = Due(save_every=5, save_minutes=1, clock=lambda: now[0])
    seen = []
    for step in range(1, 13):
        now[0] += 25  # 25 s a step: 60 s passes during step 3
        if due(step):
            seen.append(step)
    assert seen == [3, 5, 8, 10]  # 3 (time), 5 (steps; the clock restarts), 8 (time), 10 (steps)
    assert not any(Due(save_every=0, save_minutes=0)(s) for s in range(1, 50))


def test_the_rules():
    assert [data_defaults.epochs_for(n) for n in (1, 8, 20, 160, 10_000)] == [50, 50, 40, 5, 5]
    assert (
        data_defaults.decoder_fraction_for(7500) == 1.0 and data_defaults.decoder_fraction_for(15000) == 0.5
    )
    assert data_defaults.decoder_fraction_for(10**7) == 1 / 16
    c = resolve(TrainConfig(out="o"))
    assert (c.epochs, c.warmup_steps, c.decoder_frame_fraction) == (5, 10, 1 / 16)  # until the data is known
    chosen, notes = data_defaults.choose(c, clips=20, frames=100_000, steps_for=lambda k: 5 * k.epochs)
    assert (chosen.epochs, chosen.warmup_steps, chosen.decoder_frame_fraction) == (40, 10, 0.075)
    assert len(notes) == 3
    resumed = data_defaults.as_checkpoint(
        c, {"epochs": 40, "warmup_steps": 10, "decoder_frame_fraction": 0.075}
    )
    assert (resumed.epochs, resumed.auto) == (40, [])
