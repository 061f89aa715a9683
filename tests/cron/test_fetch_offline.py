"""hf-fetch that fails before writing a clip (a hub id with no network) leaves no folder behind."""

from click.testing import CliRunner
from voxlora.cli.hf_fetch import main

HUB_ID = "mozilla-foundation/common_voice_17_0"


def fetch(*args):
    return CliRunner().invoke(main.cli, [str(a) for a in args])


def test_a_failed_fetch_removes_the_out_dir_it_made(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = fetch(HUB_ID, "--language", "en", "--out-dir", tmp_path / "clips" / "cv")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {HUB_ID}: not a local file or folder")
    assert sorted(tmp_path.iterdir()) == []  # neither clips/cv nor clips/, nor the lock file beside them


def test_a_folder_that_was_there_stays_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "clips").mkdir()
    result = fetch(HUB_ID, "--language", "en", "--out-dir", tmp_path / "clips")
    assert result.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]
    assert list((tmp_path / "clips").iterdir()) == []  # no marker left in it either
