"""The file tools on real (tiny) VoxCPM folders: the .bin base, VoxCPM2, audiovae.safetensors, and
VoxCPM's own LoRA files round-tripping through its own loader."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from voxlora.cli.lora_init import main as init_main
from voxlora.cli.lora_inspect import main as inspect_main
from voxlora.cli.lora_merge import main as merge_main

from tests.robust.badinput import pickle_bomb
from tests.voxcpm.tiny import write_tiny_voxcpm


def invoke(main, *args):
    return CliRunner().invoke(main.cli, list(map(str, args)))


@pytest.fixture(scope="module")
def bin_base(tmp_path_factory):
    """VoxCPM-0.5B's layout: pytorch_model.bin + audiovae.pth."""
    return write_tiny_voxcpm(tmp_path_factory.mktemp("voxcpm") / "bin", weights="bin", seed=3)


def test_bin_base_init_inspect_merge(bin_base, tmp_path):
    from voxlora.families.voxcpm.load import load

    result = invoke(init_main, "--model", bin_base, "--targets", "attn,proj", "-r", "4", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    result = invoke(inspect_main, tmp_path / "a", "--model", bin_base, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["family"] == "voxcpm" and report["problems"] == []
    assert report["targets"][-3:] == ["enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj"]

    result = invoke(merge_main, "--model", bin_base, "--adapter", tmp_path / "a", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "m" / "pytorch_model.bin").exists()  # rewritten as model.safetensors
    merged = load_file(tmp_path / "m" / "model.safetensors")
    before = torch.load(bin_base / "pytorch_model.bin", weights_only=True)
    assert set(merged) == set(before)
    assert all(torch.equal(merged[n], t) for n, t in before.items())  # B = 0: nothing changes
    assert (tmp_path / "m" / "audiovae.pth").read_bytes() == (bin_base / "audiovae.pth").read_bytes()
    model = load(tmp_path / "m")  # every weight there, nothing extra
    assert torch.equal(model.stop_head.weight, before["stop_head.weight"])


def test_voxcpm2_proj_and_audiovae_safetensors(tiny_v2, tmp_path):
    result = invoke(init_main, "--model", tiny_v2, "--targets", "proj", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    result = invoke(inspect_main, tmp_path / "a", "--model", tiny_v2, "--json")
    report = json.loads(result.stdout)
    assert report["targets"] == ["enc_to_lm_proj", "lm_to_dit_proj", "res_to_dit_proj", "fusion_concat_proj"]
    result = invoke(merge_main, "--model", tiny_v2, "--adapter", tmp_path / "a", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "audiovae.safetensors").read_bytes() == (
        tiny_v2 / "audiovae.safetensors"
    ).read_bytes()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["architecture"] == "voxcpm2"


def test_a_code_running_bin_is_refused_never_unpickled(tmp_path, bin_base):
    import shutil

    from voxlora.errors import VoxloraError
    from voxlora.families.voxcpm.load import load

    folder = tmp_path / "evil"
    shutil.copytree(bin_base, folder)
    marker = tmp_path / "UNPICKLED"
    (folder / "pytorch_model.bin").write_bytes(pickle_bomb(marker))
    with pytest.raises(VoxloraError, match="pytorch_model.bin: refused: not a plain tensor file"):
        load(folder)
    result = invoke(init_main, "--model", folder, "--dry-run")
    assert result.exit_code == 1 and "refused: not a plain tensor file" in result.stderr
    (folder / "pytorch_model.bin").write_bytes((bin_base / "pytorch_model.bin").read_bytes())
    (folder / "audiovae.pth").write_bytes(pickle_bomb(marker))
    with pytest.raises(VoxloraError, match="audiovae.pth: refused"):
        load(folder)
    assert not marker.exists()
