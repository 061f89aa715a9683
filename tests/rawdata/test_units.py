"""The raw-recording modules on small hand-made inputs: decode, plan, clean, split, textcheck, summary."""

import numpy as np
import pytest
import soundfile as sf
from voxlora import audio, clean, decode, split, summary, textcheck
from voxlora.errors import VoxloraError
from voxlora.rejects import Rejected
from voxlora.segment import SegmentConfig, plan

RATE = 22050


def _tone(seconds=1.0, rate=RATE, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus"])
def test_every_format_loads(tmp_path, ext):
    x, path = _tone(1.0), tmp_path / f"a{ext}"
    if ext in (".wav", ".flac"):
        sf.write(path, x, RATE)
    else:
        decode.encode(path, x, RATE)
    y, sr = audio.load(path)
    assert sr == (48000 if ext in (".ogg", ".opus") else RATE)
    assert abs(len(y) / sr - 1.0) < 0.1  # AAC adds its priming samples
    assert 0.25 < float(np.abs(y).max()) < 0.35


def test_what_no_decoder_opens_keeps_libsndfile_reason(tmp_path):
    (tmp_path / "x.m4a").write_bytes(b"not audio at all" * 10)
    with pytest.raises(Rejected) as e:
        audio.load(tmp_path / "x.m4a")
    assert e.value.kind == "unreadable" and "Format not recognised" in str(e.value)


def test_plan_cuts_at_pauses_joins_short_and_splits_long():
    cfg = SegmentConfig(min_duration=1.0, max_duration=6.0, pause=0.3, margin=0.1)
    regions = [(0.5, 2.0), (2.1, 3.0), (3.6, 4.0), (5.0, 7.0), (7.2, 9.5), (9.6, 12.0)]
    kept, short = plan(regions, 13.0, cfg)
    # (0.5-3.0): the 0.1 s pause is inside a sentence; (3.6-4.0) is too short and joins the nearer
    # neighbour (0.6 s before vs 1.0 s after); (5.0-12.0) is 7 s, split at its longest pause (0.2 s)
    assert [(s.start, s.end) for s in kept] == [(0.4, 4.1), (4.9, 7.1), (7.1, 12.1)]
    assert short == [] and all(s.cut is None for s in kept)
    kept, _ = plan([(0.0, 14.0)], 14.0, cfg)  # no pause at all: cut in equal pieces, marked
    assert len(kept) == 3 and {s.cut for s in kept} == {"no-pause"}
    kept, short = plan([(1.0, 1.5)], 3.0, cfg)
    assert kept == [] and [(s.start, s.end) for s in short] == [(0.9, 1.6)]


def test_clean_trims_normalises_and_reports():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(RATE), _tone(1.0, amp=0.05), np.zeros(RATE)])
    x = x + rng.normal(0, 1e-4, len(x)).astype(np.float32)
    y, report = clean.clean(x, RATE, clean.CleanConfig(margin=0.1, loudness=-23.0))
    assert abs(len(y) / RATE - 1.2) < 0.05
    assert abs(clean.loudness(y, RATE) - -23.0) < 0.1
    assert report["snr_db"] > 40 and report["clipped"] == 0.0 and clean.problems(report) == []
    loud = np.clip(_tone(1.0, amp=2.0), -1, 1)
    noisy = _tone(1.0) + rng.normal(0, 0.1, RATE).astype(np.float32)
    assert clean.problems(clean.clean(loud, RATE)[1])[0].startswith("clipped (")
    assert clean.problems(clean.clean(noisy, RATE)[1])[0].startswith("low SNR (")
    y, gain = clean.normalize(_tone(1.0, amp=0.5), RATE, target=-3.0)  # would clip: peak held at -1 dBFS
    assert float(np.abs(y).max()) == pytest.approx(10 ** (-1 / 20), rel=1e-4) and 0 < gain < 6


def test_split_by_recording_never_shares_a_recording():
    records = [{"audio": f"c{i}.wav", "source": {"file": f"rec{i % 4}.m4a"}} for i in range(20)]
    train, val = split.split_by_recording(records, fraction=0.2)
    assert len(val) >= 4 and not {split.recording_of(r) for r in val} & {split.recording_of(r) for r in train}
    assert split.split_by_recording(records, fraction=0.2) == (train, val)  # the same every time
    train, val = split.split_by_recording(records, count=9)
    assert len(val) >= 9 and len({split.recording_of(r) for r in train}) >= 1
    with pytest.raises(VoxloraError, match="at least two recordings"):
        split.split_by_recording(records[:1] * 3, fraction=0.5)


def test_textcheck_names_unknown_characters_and_misaligned_transcripts(caplog):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(["<unk>", *" abcdefghijklmnopqrstuvwxyz."])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    assert textcheck.unrepresentable(tok, "héllo 日本") == "é日本"
    records = [{"audio": f"/c{i}.wav", "text": "a normal sentence.", "duration": 1.5} for i in range(5)]
    records.append({"audio": "/long.wav", "text": "hi.", "duration": 12.0})
    counts: dict = {}
    with caplog.at_level("WARNING"):
        out = list(textcheck.check_texts(records, tok, counts))
    assert out == records and counts == {"text-vs-duration": 1}
    assert "/long.wav: 3 tokens in 12.0 s" in caplog.text


def test_summary_lines_and_plot(tmp_path):
    records = [{"duration": d, "speaker": s} for d, s in ((1.5, 0), (3.0, 0), (3.5, 1), (11.0, 1))]
    lines = summary.describe(records)
    assert lines[0] == "clips 4, 0.3 min, 2 speakers, 1.5-11.0 s (median 3.2 s)"
    assert [line.split("|")[1].split()[-1] for line in lines[1:]] == ["1", "2", "0", "0", "0", "1"]
    summary.plot(records, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
