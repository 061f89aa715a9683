"""A small real-speech corpus made offline, for `make demo`: ``python -m voxlora.demo_corpus OUT_DIR``.

``--interview`` makes raw recordings instead, for README's "your own voice in 10 minutes" recipe
and its test: `make_interview` (three recordings, WAV, MP3 and M4A, with pauses and noise).

Speaks `SENTENCES` with hibari-tts (a 7.9 MB English TTS that runs on a CPU; an optional dependency,
``pip install "voxlora[demo]"``) and saves them as a local Hugging Face dataset, the kind hf-fetch
reads: ``DatasetDict({"train": ...}).save_to_disk(OUT_DIR)`` with columns ``audio`` (Audio, WAV bytes),
``text`` and ``speaker_id``.

Deterministic: every sentence is synthesized with its own fixed seed. Only hibari's bundled voice
("heart") is used, since its other voices are downloaded on first use and the demo stays offline:
one speaker, which is also the common fine-tuning case (one person's voice). The clips are stored at
22.05 kHz, as LJSpeech ships, so the demo shows mkmanifest resampling them to CSM's 24 kHz.
"""

import logging
from pathlib import Path

import click

from voxlora.clikit import command, common_options, run
from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora.demo_corpus")

VOICE = "heart"
SAMPLE_RATE = 22050
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A rainbow is a division of white light into many beautiful colors.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
)

# Two sentences the demo never trains on: `make demo` ends with lora-eval speaking them.
HELD_OUT = (
    "The sky that morning was clear and bright blue.",
    "Open the crate but don't break the glass.",
)


def write_held_out(out_dir, sentences=HELD_OUT, voice: str = VOICE) -> Path:
    """The held-out sentences spoken by the demo's voice as 24 kHz WAVs, and their manifest (returned)."""
    import json

    from voxlora import audio
    from voxlora.atomic import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (text, x) in enumerate(zip(sentences, synthesize(sentences, voice, 24000), strict=True)):
        path = out_dir / f"held_out_{i}.wav"
        audio.write_wav(path, x, 24000)
        record = {
            "audio": str(path.resolve()),
            "text": text,
            "speaker": 0,
            "duration": audio.duration(x, 24000),
        }
        lines.append(json.dumps(record) + "\n")
    manifest = out_dir / "held_out.jsonl"
    atomic_write_text(manifest, "".join(lines))
    return manifest


def synthesize(sentences=SENTENCES, voice: str = VOICE, sample_rate: int = SAMPLE_RATE) -> list:
    """One mono float32 array per sentence at ``sample_rate``, sentence i spoken with seed i."""
    try:
        from hibari import SAMPLE_RATE as HIBARI_RATE
        from hibari import Hibari
    except ImportError:
        raise VoxloraError(
            'the demo corpus needs hibari-tts: pip install "voxlora[demo]" (or: pip install hibari-tts)'
        ) from None
    from voxlora import audio

    tts = Hibari(voice=voice)
    return [audio.resample(tts(text, seed=i), HIBARI_RATE, sample_rate) for i, text in enumerate(sentences)]


def make_corpus(out_dir, sentences=SENTENCES, voice: str = VOICE, sample_rate: int = SAMPLE_RATE) -> Path:
    """Synthesize ``sentences`` and save them as a DatasetDict with a "train" split in ``out_dir``."""
    import datasets

    from voxlora import audio
    from voxlora.atomic import atomic_dir

    clips = synthesize(sentences, voice, sample_rate)
    table = {
        "audio": [
            {"bytes": audio.wav_bytes(x, sample_rate), "path": f"{voice}_{i:03d}.wav"}
            for i, x in enumerate(clips)
        ],
        "text": list(sentences),
        "speaker_id": [voice] * len(sentences),
    }
    # Built as plain columns, then typed: encoding straight into Audio() needs torchcodec.
    ds = datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio(sampling_rate=sample_rate))
    with atomic_dir(out_dir) as tmp:
        datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp))
    seconds = sum(len(x) for x in clips) / sample_rate
    log.info(
        "%s: %d clips, %.1f s of speech (%s voice, %d Hz)", out_dir, len(clips), seconds, voice, sample_rate
    )
    return Path(out_dir)


INTERVIEW = (("part1.wav", (3, 4, 5, 6)), ("part2.mp3", (7, 8, 9, 10)), ("part3.m4a", (11, 12, 13, 14)))
PAUSES = (0.5, 1.1, 0.7, 1.6, 0.9, 1.3)  # seconds between the interview's sentences, cycled
INTERVIEW_RATE = 24000


def _speech_extent(x) -> tuple[int, int]:
    import numpy as np

    loud = np.flatnonzero(np.abs(x) >= 0.01 * np.abs(x).max())
    return int(loud[0]), int(loud[-1]) + 1


def make_interview(folder, voice: str = VOICE) -> dict:
    """Three raw recordings of one voice in ``folder``: part1.wav, part2.mp3, part3.m4a.

    Each holds four of `SENTENCES` (their own leading/trailing silence cut) separated by pauses of
    0.5-1.6 s, after 0.8 s of silence, scaled to a 0.5 peak, with a steady noise floor about 40 dB
    under the speech; the MP3 and M4A are encoded by PyAV (`voxlora.decode`), which decodes them
    too. Returns where each sentence is: ``{absolute path: [{"text", "start", "end"}]}`` (seconds).
    """
    import numpy as np

    from voxlora import audio, decode

    clips = synthesize([SENTENCES[i] for _, ids in INTERVIEW for i in ids], voice, INTERVIEW_RATE)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    truth, k = {}, 0
    for name, ids in INTERVIEW:
        pieces, spans, t = [np.zeros(int(0.8 * INTERVIEW_RATE), np.float32)], [], 0.8
        for i in ids:
            x = clips[k]
            a, b = _speech_extent(x)
            x = x[a:b]
            spans.append(
                {"text": SENTENCES[i], "start": round(t, 3), "end": round(t + len(x) / INTERVIEW_RATE, 3)}
            )
            pause = PAUSES[k % len(PAUSES)]
            k += 1
            pieces += [x, np.zeros(int(pause * INTERVIEW_RATE), np.float32)]
            t += len(x) / INTERVIEW_RATE + pause
        signal = np.concatenate(pieces)
        signal = 0.5 * signal / np.abs(signal).max()
        signal = signal + rng.normal(0, 0.002, len(signal)).astype(np.float32)
        path = folder / name
        if path.suffix == ".wav":
            audio.write_wav(path, signal, INTERVIEW_RATE)
        else:
            decode.encode(path, signal, INTERVIEW_RATE)
        truth[str(path.resolve())] = spans
    log.info("%s: %s", folder, ", ".join(name for name, _ in INTERVIEW))
    return truth


@command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--interview", is_flag=True, help="Raw recordings (WAV, MP3, M4A) with pauses, not a dataset.")
@common_options
def cli(out_dir, interview):
    """Make the demo's speech corpus (a local Hugging Face dataset) in OUT_DIR.

    With --interview: three raw recordings of one voice (part1.wav, part2.mp3, part3.m4a) for
    mkmanifest --segment --transcribe.
    """
    if interview:
        make_interview(out_dir)
        return
    import datasets

    datasets.disable_progress_bars()
    make_corpus(out_dir)


main = run(cli)

if __name__ == "__main__":
    main()
