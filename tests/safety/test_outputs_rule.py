"""voxlora.outputs, voxlora.textsniff, voxlora.devices and atomic's modes, in process (milliseconds)."""

import json
import os

import pytest
from voxlora import outputs
from voxlora.errors import UsageError, VoxloraError
from voxlora.textsniff import jsonl_lines


def test_a_missing_or_empty_folder_is_fine(tmp_path):
    assert outputs.check_dir(tmp_path / "new", outputs.ADAPTER) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".a0.k2j3h4.tmp").write_text("")  # scratch a kill left: not the user's
    outputs.check_dir(tmp_path / "empty", outputs.MERGED)


@pytest.mark.parametrize("where", ["base", "base/sub/out", "."])
def test_never_an_input_inside_one_or_holding_one(tmp_path, where):
    (tmp_path / "base").mkdir()
    with pytest.raises(VoxloraError, match=r"the output folder (is|lies inside|holds) the base model"):
        outputs.check_dir(tmp_path / where, outputs.ADAPTER, [("the base model", tmp_path / "base")])


def test_the_first_foreign_file_is_named(tmp_path):
    kind = outputs.wav_folder("synth")
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "b.wav").write_bytes(b"")
    (tmp_path / "gen" / "a.txt").write_text("mine")
    with pytest.raises(VoxloraError) as e:
        outputs.check_dir(tmp_path / "gen", kind)
    assert str(e.value) == (
        f"{tmp_path / 'gen'}: holds {tmp_path / 'gen' / 'a.txt'}, which synth did not write "
        "(no .voxlora-output.json of synth); choose an empty or new folder"
    )
    outputs.mark_dir(tmp_path / "gen", kind)
    with pytest.raises(VoxloraError, match="a.txt, which synth did not write; it is never replaced"):
        outputs.check_dir(tmp_path / "gen", kind, overwrite=True)  # --overwrite never covers foreign files
    (tmp_path / "gen" / "a.txt").unlink()
    outputs.check_dir(tmp_path / "gen", kind)
    with pytest.raises(VoxloraError, match="which mkmanifest did not write"):  # another command's marker
        outputs.check_dir(tmp_path / "gen", outputs.wav_folder("mkmanifest"))


def test_a_listed_marker_names_exactly_what_was_written(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    for name in ("config.json", "model.safetensors"):
        (out / name).write_text("x")
    outputs.mark_dir(out, outputs.MERGED, base="b")
    assert json.loads((out / "voxlora-merge.json").read_text()) == {
        "tool": "lora-merge",
        "base": "b",
        "files": ["config.json", "model.safetensors"],
    }
    outputs.check_dir(out, outputs.MERGED)
    (out / "tokenizer.json").write_text("{}")
    with pytest.raises(VoxloraError, match="tokenizer.json, which lora-merge did not write"):
        outputs.check_dir(out, outputs.MERGED)


def test_trained_work_needs_overwrite(tmp_path):
    run = tmp_path / "run"
    (run / "step_0000004").mkdir(parents=True)
    (run / "voxlora-train.json").write_text("{}")
    with pytest.raises(VoxloraError, match=r"checkpoints of an earlier run \(step_0000004/\); add --resume"):
        outputs.check_dir(run, outputs.TRAIN_RUN)
    outputs.check_dir(run, outputs.TRAIN_RUN, overwrite=True)
    outputs.check_dir(run, outputs.TRAIN_RUN, resume=True)
    adapter = tmp_path / "a"
    adapter.mkdir()
    (adapter / "voxlora.json").write_text(json.dumps({"created_with": {"tool": "lora-train"}}))
    with pytest.raises(VoxloraError, match="an adapter written by lora-train .trained.; add --overwrite"):
        outputs.check_dir(adapter, outputs.ADAPTER)
    (adapter / "voxlora.json").write_text(json.dumps({"created_with": {"tool": "lora-init"}}))
    outputs.check_dir(adapter, outputs.ADAPTER)


def test_a_single_file_of_another_kind_needs_overwrite(tmp_path):
    wav, weights = tmp_path / "a.wav", tmp_path / "w.safetensors"
    wav.write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    weights.write_bytes(b"\x08\0\0\0\0\0\0\0{}")
    outputs.check_file(wav, outputs.WAV_FILE)
    with pytest.raises(VoxloraError, match="w.safetensors: exists and is not a WAV file; add --overwrite"):
        outputs.check_file(weights, outputs.WAV_FILE)
    outputs.check_file(weights, outputs.WAV_FILE, overwrite=True)
    with pytest.raises(VoxloraError, match="the output file is a --context clip"):
        outputs.check_file(wav, outputs.WAV_FILE, [("a --context clip", wav)], overwrite=True)
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n')
    outputs.check_file(tmp_path / "r.jsonl", outputs.JSONL_FILE)
    with pytest.raises(VoxloraError, match="is not a JSONL file"):
        outputs.check_file(wav, outputs.JSONL_FILE)


def lines(data: bytes):
    return list(jsonl_lines("m.jsonl", enumerate(data.splitlines(keepends=True), 1)))


def test_a_manifest_with_bad_lines_among_good_ones_passes_through():
    data = b'not json\n{"audio": "a.wav", "text": "caf\xe9"}\n\n[1]\n'
    assert [n for n, _ in lines(data)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "data, said",
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00", "m.jsonl: not a text manifest (a WAV/RIFF file)"),
        (b"\x08\x00\x00\x00\x00\x00\x00\x00{}", "m.jsonl: not a text manifest (binary data)"),
        (
            b"a\nb\nc\nd\ne\nf\n{}\n",
            "m.jsonl: not a JSONL manifest (none of its first 5 lines is a JSON object)",
        ),
        (b"[1, 2]\n", "m.jsonl: not a JSONL manifest (none of its first 1 lines is a JSON object)"),
    ],
)
def test_not_jsonl_text_is_one_error_at_once(data, said):
    with pytest.raises(VoxloraError) as e:
        lines(data)
    assert str(e.value).startswith(said)


def test_devices():
    import torch
    from voxlora.devices import check_device

    assert check_device("cpu") == "cpu" and check_device("auto") == "auto"
    with pytest.raises(UsageError):
        check_device("cdua")
    with pytest.raises(UsageError):
        check_device("cuda", "mlx")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(VoxloraError, match=f"--device cuda:{n}: not available on this machine"):
        check_device(f"cuda:{n}")


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027])
def test_atomic_writes_follow_the_umask(tmp_path, mask):
    from voxlora.atomic import atomic_dir, atomic_write_text

    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "f.json", "{}")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "sub").mkdir()
            fd = os.open(tmp / "w", os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors' writer does
            os.close(fd)
    finally:
        os.umask(old)
    assert oct((tmp_path / "f.json").stat().st_mode & 0o777) == oct(0o666 & ~mask)
    assert oct((tmp_path / "d" / "w").stat().st_mode & 0o777) == oct(0o666 & ~mask)
    for folder in (tmp_path / "d", tmp_path / "d" / "sub"):
        assert oct(folder.stat().st_mode & 0o777) == oct(0o777 & ~mask)
