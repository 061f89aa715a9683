"""metrics.jsonl on --resume: the lines up to the checkpoint are kept, even through a kill."""

import json

import pytest
from voxlora.train import metrics


def lines(path) -> list[int]:
    return [json.loads(x)["step"] for x in path.read_text().splitlines()]


def test_resuming_keeps_the_lines_up_to_the_checkpoint_and_appends(tmp_path):
    path = tmp_path / metrics.METRICS
    path.write_text(
        "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo'
    )
    log = metrics.MetricsFile(path, keep_until_step=3)
    assert [r["step"] for r in log.kept] == [1, 2, 3]
    log.write({"step": 4, "loss": 0.5})
    log.close()
    assert lines(path) == [1, 2, 3, 4]
    metrics.MetricsFile(path).close()  # a fresh run starts a fresh record
    assert path.read_text() == ""


def test_a_kill_right_after_opening_loses_no_history(tmp_path, monkeypatch):
    path = tmp_path / metrics.METRICS
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 6)))

    def open_then_killed(*args, **kwargs):
        open(*args, **kwargs).close()  # e.g. truncating, with "w"
        raise SystemExit(137)

    monkeypatch.setattr(metrics, "open", open_then_killed, raising=False)
    with pytest.raises(SystemExit):
        metrics.MetricsFile(path, keep_until_step=3)
    assert lines(path) == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == [metrics.METRICS]  # no temporary file left
