"""Every console script has help (-h and --help), a README section, and fast help (no torch import)."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _cli(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr).cli


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(name, flag):
    result = CliRunner().invoke(_cli(SCRIPTS[name]), [flag])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "--quiet" in result.output and "--debug" in result.output


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_readme_has_a_section(name):
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"^### `?{re.escape(name)}`?\s*$", readme, re.M), (
        f"README.md has no '### {name}' section"
    )


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_does_not_import_torch(name):
    module = SCRIPTS[name].split(":")[0]
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, (
        f"{module} imports torch at import time"
    )


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_unknown_option_is_a_usage_error(name):
    result = CliRunner().invoke(_cli(SCRIPTS[name]), ["--no-such-option"])
    assert result.exit_code == 2
