"""VoxCPM1.5 (44.1 kHz, patches of 4, in its own layout: `tiny.V15`) through every command:
lora-train on clips at other rates, its own loader takes the adapter whole, lora-inspect and
lora-merge on it, and synth speaks at 44.1 kHz with the adapter, direct and merged alike."""

import json

import numpy as np
import soundfile as sf
from click.testing import CliRunner
from voxlora.cli.lora_init import main as init_main
from voxlora.cli.lora_inspect import main as inspect_main
from voxlora.cli.lora_merge import main as merge_main
from voxlora.cli.lora_train import main as train_main
from voxlora.cli.synth import main as synth_main

from tests.voxcpm.test_voxcpm_train import tone

SPEAK = ["--max-seconds", "0.35", "--timesteps", "2", "--seed", "4", "Hello there"]  # 2 patches of 0.16 s


def invoke(main, *args):
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result


def test_voxcpm15_trains_inspects_merges_and_speaks_at_44k(tiny_v15, tmp_path):
    from voxlora.families.voxcpm.runtime import classes

    for name, seconds, freq, sr in [
        ("a.wav", 0.4, 220, 16000),
        ("b.wav", 0.3, 330, 22050),
        ("c.wav", 0.5, 440, 44100),
    ]:
        sf.write(tmp_path / name, tone(seconds, freq, sr), sr)  # two of three resampled to 44.1 kHz
    lines = [
        {"audio": n, "text": t} for n, t in [("a.wav", "Hello there"), ("b.wav", "Hi"), ("c.wav", "Good day")]
    ]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    run = tmp_path / "run"
    invoke(train_main, "--model", tiny_v15, "--manifest", tmp_path / "t.jsonl", "-o", run, "--max-steps", 2,
           "--batch-size", 3, "--targets", "attn,proj", "-r", 4, "--alpha", 8, "--lr", 0.05)  # fmt: skip
    assert json.loads((run / "voxlora.json").read_text())["voxcpm"] == {
        "sample_rate": 44100,
        "architecture": "voxcpm",
    }

    k = classes("voxcpm")  # VoxCPM's own loader takes the LoRA whole
    cfg = json.loads((run / "lora_config.json").read_text())["lora_config"]
    own = k.model.from_local(
        str(tiny_v15), optimize=False, training=True, device="cpu", lora_config=k.lora_config(**cfg)
    )
    assert own.patch_size == 4 and own.load_lora_weights(str(run), device="cpu")[1] == []

    report = json.loads(invoke(inspect_main, run, "--model", tiny_v15, "--json").stdout)
    assert report["family"] == "voxcpm" and report["problems"] == []
    merged = tmp_path / "merged"
    invoke(merge_main, "--model", tiny_v15, "--adapter", run, "-o", merged)
    assert (merged / "audiovae.pth").read_bytes() == (tiny_v15 / "audiovae.pth").read_bytes()
    fresh = invoke(
        init_main, "--model", merged, "--targets", "attn", "-o", tmp_path / "again"
    )  # merged is a base
    assert "adapter" in fresh.stdout

    waves = {}
    for name, model, extra in [
        ("base", tiny_v15, []),
        ("direct", tiny_v15, ["--adapter", run]),
        ("merged", merged, []),
    ]:
        invoke(synth_main, "--model", model, *extra, *SPEAK, "-o", tmp_path / f"{name}.wav")
        waves[name], rate = sf.read(tmp_path / f"{name}.wav", dtype="float32")
        assert rate == 44100 and len(waves[name]) > 0
    assert waves["direct"].shape == waves["merged"].shape and np.allclose(
        waves["direct"], waves["merged"], atol=1e-4
    )
    base, tuned = waves["base"], waves["direct"]
    assert base.shape != tuned.shape or not np.array_equal(
        base, tuned
    )  # the trained adapter speaks otherwise
