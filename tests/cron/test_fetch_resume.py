"""hf-fetch killed and run again: only the missing clips are fetched, the JSONL is an uninterrupted run's;
Hub network errors are retried a bounded number of times, then one line."""

import fcntl
import os
import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from voxlora import retry
from voxlora.cli.hf_fetch import main

from tests.datagen import make_hf_dataset

N = 30
FETCH = "from voxlora.cli.hf_fetch import main; main()"


def hf_fetch(*args):
    """hf-fetch in this process: the runs around the killed one (that one is a real process)."""
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def test_a_killed_fetch_run_again_fetches_only_what_is_missing(tmp_path):
    data = tmp_path / "librispeech"
    make_hf_dataset(data, "librispeech", n=N, fmt="parquet")
    reference = hf_fetch(data, "--out-dir", tmp_path / "ref", "--sample-rate", 24000)
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "clips"
    read, write = os.pipe()
    fcntl.fcntl(write, 1031, 4096)  # F_SETPIPE_SZ: the smallest pipe, so the writer blocks after ~15 records
    proc = subprocess.Popen([sys.executable, "-c", FETCH, str(data), "--out-dir", str(out), "--sample-rate", "24000"],
                            stdout=write, stderr=subprocess.DEVNULL)  # fmt: skip
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        pipe.read(2000)  # ~8 records out; then wait until it blocks on a full pipe, and kill it there
        while len(list(out.glob("*.wav"))) < 12:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    whole = sorted(out.glob("*.wav"))
    assert 12 <= len(whole) < N
    (out / f".{whole[-1].name}.abcd1234.tmp").write_bytes(b"RIFF")  # what a kill mid-write leaves
    whole[-1].unlink()
    damaged = whole[3]
    damaged.write_bytes(damaged.read_bytes()[:-100])  # cut short some other way: fetched again
    kept = {p: p.stat().st_mtime_ns for p in whole[:-1] if p != damaged}

    again = hf_fetch(data, "--out-dir", out, "--sample-rate", 24000)
    assert again.returncode == 0, again.stderr
    assert again.stdout == reference.stdout.replace(str(tmp_path / "ref"), str(out))
    counts = re.search(
        rf"{re.escape(str(out))}: kept (\d+) clips fetched before, fetched (\d+) \([12] half-written",  # 2: the kill fell mid-write
        again.stderr,
    )
    assert counts, again.stderr
    reused, fetched = int(counts[1]), int(counts[2])
    # the kill may fall between a clip's WAV and its journal line: that one clip is fetched again
    assert reused + fetched == N and len(kept) - 1 <= reused <= len(kept), again.stderr
    assert (
        sum(p.stat().st_mtime_ns == t for p, t in kept.items()) == reused
    )  # the kept ones: not written again
    assert not list(out.glob(".*.tmp"))

    third = hf_fetch(data, "--out-dir", out, "--sample-rate", 24000)  # idempotent
    assert third.stdout == again.stdout and f"kept {N} clips fetched before, fetched 0" in third.stderr
    other = hf_fetch(
        data, "--out-dir", out, "--sample-rate", 16000, "--limit", 2
    )  # other settings: fetched anew
    assert "fetched before" not in other.stderr and other.stdout.count('"sample_rate": 16000') == 2
    killed = hf_fetch(
        data, "--out-dir", out, "--sample-rate", 24000, "--limit", 3
    )  # rows 0, 1 redone, 2 kept
    assert f"{out}: kept 1 clip fetched before, fetched 2" in killed.stderr


class Flaky(Exception):
    pass


class ConnectionError(Exception):  # noqa: A001 - named like requests' (retry knows it by name)
    pass


@pytest.fixture
def no_waiting(monkeypatch):
    waits = []
    monkeypatch.setattr(retry, "sleep", waits.append)
    return waits


def test_hub_network_errors_are_retried_then_one_line(monkeypatch, tmp_path, no_waiting):
    import datasets
    from voxlora import hf

    calls = []

    def load_dataset(*args, **kwargs):
        calls.append(args[0])
        raise ConnectionError("Connection reset by peer")

    monkeypatch.setattr(hf, "hub_unreachable", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    result = CliRunner().invoke(main.cli, ["owner/voices", "--out-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert len(calls) == retry.ATTEMPTS and no_waiting == [1.0, 2.0, 4.0, 8.0]
    assert result.output.splitlines()[-1] == (
        f"Error: owner/voices: the Hub failed {retry.ATTEMPTS} times, the last with Connection reset by peer; try later"
    )


def test_a_stream_cut_mid_way_is_reopened_at_the_row(tmp_path, no_waiting):
    from voxlora.hf import FetchConfig, _dataset_rows

    class Stream:  # an IterableDataset that drops the connection at row 2, twice
        features, column_names = None, ["audio", "text"]
        failures = [2, 2]

        def __init__(self, start=0):
            self.start = start

        def __iter__(self):
            for i in range(self.start, 4):
                if self.failures and self.failures[0] == i:
                    self.failures.pop(0)
                    raise ConnectionError("Read timed out")
                yield {"audio": {"path": f"{i}.wav", "bytes": None}, "text": f"t{i}"}

        def skip(self, n):
            return Stream(n)

    rows = list(_dataset_rows(Stream(), FetchConfig("x", str(tmp_path)), "."))
    assert [r.text for r in rows] == ["t0", "t1", "t2", "t3"] and no_waiting == [1.0, 2.0]
    Stream.failures = [1] * 10
    with pytest.raises(Exception, match=r"^x: reading row 1 failed: Read timed out$"):
        list(_dataset_rows(Stream(), FetchConfig("x", str(tmp_path)), "."))
    assert retry.is_transient(ConnectionError()) and not retry.is_transient(Flaky())
