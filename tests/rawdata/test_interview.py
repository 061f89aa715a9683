"""mkmanifest --segment --transcribe on a synthetic interview: three recordings (WAV, MP3, M4A).

The interview is `voxlora.demo_corpus.make_interview` (what ``python -m voxlora.demo_corpus
--interview`` writes for the README recipe): twelve hibari-tts sentences of one voice, about 40 s,
pauses of 0.5-1.6 s, a noise floor 40 dB under the speech.

What the offline recognizer (pocketsphinx, `voxlora.asr`) honestly reaches on this interview,
measured: a word error rate of 0.17 over the 6 clips it is at least 0.5 confident of (the kept ones)
and 0.26 over all 12; the bound below is 0.4. Its confidence separates good from bad transcripts
only loosely, which is why the doubtful clips go to --rejects, with the text heard, for a human.
"""

import json

import pytest
from click.testing import CliRunner
from voxlora.cli.mkmanifest import main
from voxlora.demo_corpus import INTERVIEW, make_interview

N_SENTENCES = sum(len(ids) for _, ids in INTERVIEW)

pytest.importorskip("hibari")
pytest.importorskip("av")
pytest.importorskip("silero_vad")


@pytest.fixture(scope="module")
def interview(tmp_path_factory):
    root = tmp_path_factory.mktemp("interview")
    return root, make_interview(root / "rec")


def _sentence_of(record: dict, truth: dict) -> dict:
    """The spoken sentence a clip overlaps most."""
    src = record["source"]
    return max(truth[src["file"]], key=lambda t: min(src["end"], t["end"]) - max(src["start"], t["start"]))


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def segmented(interview):
    """The recipe's first command on the interview: (root, truth, click result)."""
    pytest.importorskip("pocketsphinx")
    root, truth = interview
    args = ["rec", "--segment", "--transcribe", "--min-duration", 1, "--sample-rate", 24000,
            "--out-dir", "clips", "--val", 3, "--val-out", "val.jsonl", "--rejects", "rejects.jsonl",
            "--plot", "durations.png"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        result = CliRunner().invoke(main.cli, list(map(str, args)))
    (root / "train.jsonl").write_text(result.stdout)
    return root, truth, result


def test_segment_transcribe_split_and_reject(segmented):
    from voxlora.scoring import wer

    root, truth, result = segmented
    assert result.exit_code == 0, result.output
    train = [json.loads(line) for line in result.stdout.splitlines()]
    val, rejects = _jsonl(root / "val.jsonl"), _jsonl(root / "rejects.jsonl")

    # one clip per spoken sentence, every one accounted for (kept, held out or rejected)
    clips = train + val + rejects
    assert len(clips) == N_SENTENCES == sum(len(spans) for spans in truth.values())
    for spans in truth.values():
        for sentence in spans:
            mine = [c for c in clips if _sentence_of(c, truth) is sentence]
            assert len(mine) == 1, sentence
            start, end = mine[0]["source"]["start"], mine[0]["source"]["end"]
            # the whole sentence is inside, with at most 0.5 s of the pause around it
            assert sentence["start"] - 0.5 <= start <= sentence["start"], (sentence, start)
            assert sentence["end"] <= end + 0.05 <= sentence["end"] + 0.55, (sentence, end)
    assert {c["source"]["file"].rsplit(".", 1)[1] for c in train + val} <= {"wav", "mp3", "m4a"}
    assert {c["source"]["file"].rsplit(".", 1)[1] for c in clips} == {"wav", "mp3", "m4a"}

    # transcripts close to what was said
    kept = train + val
    said = " ".join(_sentence_of(c, truth)["text"] for c in kept)
    assert kept and wer(said, " ".join(c["text"] for c in kept)) < 0.4
    assert all(c["asr"]["model"] == "pocketsphinx-en-us" and c["asr"]["confidence"] >= 0.5 for c in kept)

    # the validation clips share no recording with the training ones
    assert val and train
    assert not {c["source"]["file"] for c in val} & {c["source"]["file"] for c in train}
    # clips are cleaned: -23 LUFS targeted, quality measured
    assert all({"snr_db", "clipped", "gain_db"} <= set(c["quality"]) for c in kept)

    # what was dropped, and why: the recognizer's own doubt, with the text it heard to correct
    for r in rejects:
        assert r["reason"].startswith(f"rec/{r['source']['file'].rsplit('/', 1)[1]} ")
        assert "--min-confidence" in r["reason"] and r["asr"]["confidence"] < 0.5 and r["text"]
    assert f"rejected {len(rejects)}" in result.stderr
    assert (root / "durations.png").read_bytes()[:4] == b"\x89PNG"
    assert f"clips {len(kept)}, " in result.stderr


def test_a_fixed_rejected_clip_is_fed_back(interview, tmp_path):
    """A rejected clip with its text corrected goes back in, keeps that text and is not transcribed."""
    root, truth = interview
    args = [root / "rec", "--segment", "--min-duration", 1, "--out-dir", tmp_path / "clips",
            "--rejects", tmp_path / "r.jsonl"]  # fmt: skip
    result = CliRunner().invoke(main.cli, list(map(str, args)))
    assert result.exit_code == 1  # no transcript at all without --transcribe: every clip rejected
    rejects = _jsonl(tmp_path / "r.jsonl")
    assert len(rejects) == N_SENTENCES and all("no transcript" in r["reason"] for r in rejects)
    fixed = [{**r, "text": _sentence_of(r, truth)["text"]} for r in rejects[:2]]
    (tmp_path / "fixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fixed))
    result = CliRunner().invoke(main.cli, [str(tmp_path / "fixed.jsonl"), "--transcribe"])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in out] == [r["text"] for r in fixed] and all("asr" not in r for r in out)


def test_the_recipe_trains_and_speaks_on_the_result(segmented, tiny_csm):
    """The README recipe's next steps on what mkmanifest wrote (a tiny CSM in place of sesame/csm-1b)."""
    from voxlora.cli.lora_train import main as lora_train
    from voxlora.cli.synth import main as synth

    root, _, _ = segmented
    result = CliRunner().invoke(lora_train.cli, list(map(str, [
        "--model", tiny_csm, "--manifest", root / "train.jsonl", "--val-manifest", root / "val.jsonl",
        "-o", root / "voice", "--max-steps", 2, "--targets", "q_proj"])))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["adapter"] == str(root / "voice")
    result = CliRunner().invoke(synth.cli, list(map(str, [
        "--model", tiny_csm, "--adapter", root / "voice", "--max-seconds", 0.5, "Hello.", "-o", root / "hello.wav"])))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (root / "hello.wav").stat().st_size > 44
