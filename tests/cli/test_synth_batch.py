"""synth --batch-size N: the same records and byte-equal WAVs as one clip at a time, in input order,
with a bad line and a long (chunked) text among them; MLX above 1 is a usage error."""

import json

import pytest
from click.testing import CliRunner
from voxlora.cli.synth import main

LINES = [
    {"text": "Hi.", "seed": 1},
    "{not json",
    {"text": "A somewhat longer sentence for the second clip, with more words.", "seed": 7, "speaker": 2},
    {"text": "Third.", "seed": 3, "id": "keep-me"},
    {"text": "Last one here.", "seed": 9},
    {"text": "A long text in two sentences, each of them long enough. " * 2, "seed": 5},
]
STDIN = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in LINES) + "\n"


def run(model, out_dir, *args):
    args = ["--model", str(model), "--max-seconds", "0.24", "--out-dir", str(out_dir), *map(str, args)]
    return CliRunner().invoke(main.cli, args, input=STDIN)


@pytest.fixture(scope="module")
def one_at_a_time(tiny_csm, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    return out, run(tiny_csm, out, "--batch-size", 1)


def test_batch_size_3_gives_the_same_records_and_wavs_as_one_at_a_time(tiny_csm, tmp_path, one_at_a_time):
    out1, single = one_at_a_time
    batched = run(tiny_csm, tmp_path, "--batch-size", 3)
    assert single.exit_code == batched.exit_code == 1  # the bad line, reported; the others spoken
    records1 = [json.loads(r) for r in single.stdout.splitlines()]
    records3 = [json.loads(r) for r in batched.stdout.splitlines()]
    assert [r["text"] for r in records3] == [line["text"].strip() for line in LINES if isinstance(line, dict)]
    assert records3[2]["id"] == "keep-me" and records3[4]["chunks"] == 2  # the long text: chunked, alone
    assert [r["seed"] for r in records3] == [1, 7, 3, 9, 5]
    for a, b in zip(records1, records3, strict=True):
        assert a == {**b, "audio": b["audio"].replace(str(tmp_path), str(out1))}
        assert (out1 / a["audio"].split("/")[-1]).read_bytes() == (
            tmp_path / b["audio"].split("/")[-1]
        ).read_bytes()
    assert "Error: <stdin>:2: not valid JSON" in batched.stderr
    assert batched.stderr.count("Error:") == single.stderr.count("Error:") == 2  # the line, and the count
    assert "3 clips generated together" in batched.stderr  # lines 3, 4 and 5 (6 is chunked: alone)


def test_batch_size_above_1_on_mlx_is_a_usage_error(tiny_csm, tmp_path):
    result = run(tiny_csm, tmp_path, "--batch-size", 2, "--backend", "mlx")
    assert result.exit_code == 2
    assert "--batch-size above 1 needs --backend torch" in result.output


def test_batch_size_0_is_a_usage_error(tiny_csm, tmp_path):
    result = run(tiny_csm, tmp_path, "--batch-size", 0)
    assert result.exit_code == 2 and "--batch-size" in result.output
