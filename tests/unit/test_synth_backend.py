"""synth's backend choice: mlx on Apple silicon when installed, torch everywhere else."""

import pytest
from voxlora import backends
from voxlora.synth import config as synth_config


@pytest.mark.parametrize(
    "system, machine, installed, expected",
    [
        ("darwin", "arm64", True, "mlx"),
        ("darwin", "arm64", False, "torch"),
        ("darwin", "x86_64", True, "torch"),
        ("linux", "x86_64", True, "torch"),
        ("linux", "aarch64", True, "torch"),
    ],
)
def test_the_default_backend_is_mlx_on_apple_silicon_when_installed(
    monkeypatch, system, machine, installed, expected
):
    monkeypatch.setattr(backends.sys, "platform", system)
    monkeypatch.setattr(backends.platform, "machine", lambda: machine)
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: object() if installed else None)
    assert synth_config.SynthConfig().resolved_backend() == expected
    assert synth_config.SynthConfig(backend="torch").resolved_backend() == "torch"


def test_generate_batch_falls_back_to_one_at_a_time_for_a_model_without_it():
    """Higgs and VoxCPM have no generate_batch: synth --batch-size speaks their lines in turn."""
    import torch
    from voxlora.synth.backend import generate_batch

    class OneAtATime:
        calls = []

        def generate(self, inputs, max_frames, temperature, top_k, seed):
            self.calls.append((inputs, max_frames, seed))
            return torch.full((max_frames, 2), seed)

    model = OneAtATime()
    codes = generate_batch(model, [("a", 2, 5), ("b", 3, 6)], 0.9, 50)
    assert model.calls == [("a", 2, 5), ("b", 3, 6)]
    assert [c.tolist() for c in codes] == [[[5, 5]] * 2, [[6, 6]] * 3]
