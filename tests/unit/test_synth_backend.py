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
