"""lora-eval end to end on the tiny CSM and real held-out speech: every clip scored, base and adapter
rows beside the real recordings, the no-effect finding, the report's players point at real files."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip(
    "pocketsphinx", reason='lora-eval\'s scorers are the [eval] extra: pip install "voxlora[eval]"'
)


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def invoke(args, input=None):
    from voxlora.cli import lora_eval

    return CliRunner().invoke(lora_eval.cli, args, input=input)


@pytest.fixture(scope="module")
def spoken(tiny_csm, held_out, eval_adapters, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "report"
    args = ["--model", str(tiny_csm), "--manifest", str(held_out), "-o", str(out), "--max-seconds", "0.4"]
    args += ["--adapter", eval_adapters["fresh"], "--adapter", eval_adapters["moved"]]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return out, result


def test_every_clip_is_scored_for_real_base_and_each_adapter(spoken, eval_adapters):
    out, result = spoken
    records = jsonl(result.stdout)
    systems = ["real", "base", eval_adapters["fresh"], eval_adapters["moved"]]
    assert sorted((r["item"], r["adapter"]) for r in records) == sorted(
        (i, s) for i in (1, 2) for s in systems
    )
    for r in records:
        assert {"audio", "text", "adapter", "wer", "cer", "speaker_sim", "duration", "ended"} <= set(r)
        assert Path(r["audio"]).is_file()
        assert 0 <= r["wer"] and 0 <= r["cer"] and -1 <= r["speaker_sim"] <= 1
        assert (r["ended"] is None) == (r["adapter"] == "real")
    real = [r for r in records if r["adapter"] == "real"]
    base = [r for r in records if r["adapter"] == "base"]
    # the real recordings are what good looks like; the tiny random model makes noise
    assert sum(r["wer"] for r in real) / 2 < 0.5 and min(r["wer"] for r in base) >= 0.8
    assert min(r["speaker_sim"] for r in real) > max(r["speaker_sim"] for r in base)


def test_summary_table_and_the_no_effect_finding(spoken, eval_adapters):
    _, result = spoken
    lines = result.stderr.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("system"))
    rows = [line.split()[0] for line in lines[header + 2 : header + 6]]
    assert rows == ["real", "base", eval_adapters["fresh"], eval_adapters["moved"]]
    findings = [line for line in lines if "has no effect" in line]
    assert findings == [
        f"{eval_adapters['fresh']}: the adapter has no effect: its LoRA weights are all zero (B = 0: untrained?)"
    ]


def test_fresh_adapter_clips_equal_the_base_and_moved_ones_differ(spoken, eval_adapters):
    out, _ = spoken
    for item in ("0001", "0002"):
        base = (out / "audio" / "base" / f"{item}.wav").read_bytes()
        assert (out / "audio" / "adapter1" / f"{item}.wav").read_bytes() == base
        assert (out / "audio" / "adapter2" / f"{item}.wav").read_bytes() != base


def test_report_page_points_at_files_that_exist(spoken):
    out, _ = spoken
    page = (out / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'<audio[^>]* src="([^"]+)"', page)
    assert len(sources) == 8
    assert all(not Path(s).is_absolute() and (out / s).is_file() for s in sources)
    assert "<svg" in page and "<script" not in page
    summary = json.loads((out / "summary.json").read_text())
    assert [row["system"] for row in summary["rows"]][:2] == ["real", "base"]


def test_synth_clips_on_stdin_are_scored_against_a_reference(spoken, held_out, tmp_path):
    out, result = spoken
    clips = [r for r in jsonl(result.stdout) if r["adapter"] != "real"]
    lines = "".join(
        json.dumps({**r, "adapter": None if r["adapter"] == "base" else r["adapter"]}) + "\n" for r in clips
    )
    scored = invoke(["--reference", str(held_out), "-"], input=lines)
    assert scored.exit_code == 0, scored.output
    records = jsonl(scored.stdout)
    assert len(records) == len(clips) + 2  # the reference's real recordings are rows too
    assert {r["adapter"] for r in records} == {"real", "base", *{c["adapter"] for c in clips} - {"base"}}
    by_audio = {r["audio"]: r for r in clips}
    for r in records:
        if r["adapter"] != "real":
            assert r["wer"] == by_audio[r["audio"]]["wer"]
            assert r["speaker_sim"] == pytest.approx(by_audio[r["audio"]]["speaker_sim"], abs=1e-3)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "nothing to score"),
        (["--model", "m"], "--model and --manifest go together"),
        (["--model", "m", "--manifest", "x.jsonl"], "speaking needs -o REPORT/"),
        (["--adapter", "a", "-"], "--adapter is for speaking"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = invoke(args)
    assert result.exit_code == 2 and message in result.output


def _browser():
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium or Chrome on PATH to render the report headless (apt-get install chromium)")


def test_report_renders_in_headless_chromium(spoken, tmp_path):
    import subprocess
    from urllib.parse import unquote, urlparse

    browser = _browser()
    out, _ = spoken
    page = (out / "index.html").resolve().as_uri()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files"]  # fmt: skip
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>lora-eval report</h1>" in dom.stdout and "<svg" in dom.stdout
    sources = re.findall(r'<audio[^>]* src="([^"]+)"', dom.stdout)
    assert len(sources) == 8
    base = out.resolve()
    for src in sources:  # what the browser holds: relative to the page, each a file on disk
        target = Path(unquote(urlparse(src).path)) if src.startswith("file:") else base / unquote(src)
        assert target.is_file(), src
    shot = tmp_path / "report.png"
    run = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1400,1000", page],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0 and shot.stat().st_size > 10_000, run.stderr[-2000:]


def test_a_report_folder_is_replaced_by_a_rerun_and_a_foreign_folder_refused(spoken, held_out, tmp_path):
    _, result = spoken
    clip = next(r for r in jsonl(result.stdout) if r["adapter"] == "base")
    line = json.dumps({"audio": clip["audio"], "text": clip["text"]}) + "\n"
    for _ in range(2):
        again = invoke(["-", "-o", str(tmp_path / "r")], input=line)
        assert again.exit_code == 0, again.output
        assert (tmp_path / "r" / "index.html").is_file()
        assert sorted(p.name for p in (tmp_path / "r" / "audio").iterdir()) == ["base"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    refused = invoke(["-", "-o", str(tmp_path / "mine")], input=line)
    assert refused.exit_code == 1 and "notes.txt, which lora-eval did not write" in refused.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
