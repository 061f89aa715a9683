"""The two ways lora-eval gets its clips, both ending in scored records.

- `speak_and_score`: each held-out record's text spoken by the base and by each adapter, all with the
  same seed, speaker and context (one `Synthesizer`, the base loaded once, adapters switched), its
  real recording beside them; every clip scored.
- `score_existing`: clips that already exist (what ``synth`` prints: ``audio``, ``text``, ``adapter``,
  ``speaker``, ``ended``), and the reference manifest's real recordings beside them.

Clips are written (or copied) into ``folder/audio/<slot>/NNNN.wav`` when a report folder is given:
slot ``real``, ``base``, ``adapter1``…; each record gets ``report_audio``, that path relative to the
report, and ``item``, the number of its text (the row of the report).
"""

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.evaluation.scorer import Scorer, load_audio
from voxlora.evaluation.summary import BASE, REAL, system_of
from voxlora.scoring import normalize

log = logging.getLogger("voxlora.eval")


def _copy_real(record: dict, folder: Path | None, item: int) -> str | None:
    if folder is None:
        return None
    src = Path(record["audio"])
    rel = Path("audio", REAL, f"{item:04d}{src.suffix.lower() or '.wav'}")
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, folder / rel)
    return rel.as_posix()


def score_real(record: dict, item: int, scorer: Scorer, folder: Path | None, where: str = "") -> dict:
    """A real recording scored against the speaker's other real recordings: the ceiling row."""
    wave, rate = load_audio(record["audio"], where)
    speaker = int(record.get("speaker", 0) or 0)
    scores = scorer.score(wave, rate, record["text"], speaker, exclude=str(record["audio"]))
    out = {"audio": str(record["audio"]), "text": record["text"], "adapter": REAL, "speaker": speaker}
    out.update(scores, ended=None, item=item)
    rel = _copy_real(record, folder, item)
    if rel:
        out["report_audio"] = rel
    return out


def speak_and_score(config, adapters: list[str], held_out: list[dict], folder: Path, scorer: Scorer):
    """-> (records, waves): the scored clips (real, base, adapters per record) and (system, item) -> samples."""
    from voxlora.synth.requests import make_request
    from voxlora.synth.synthesizer import Synthesizer

    synth = Synthesizer(config)
    slots = [(BASE, None, BASE)] + [(a, a, f"adapter{i}") for i, a in enumerate(adapters, 1)]
    records, waves = [], {}
    for item, held in enumerate(held_out, 1):
        where = held.get("_where", "")
        records.append(score_real(held, item, scorer, folder, where))
        speaker = int(held.get("speaker", config.speaker) or 0)
        for system, adapter, slot in slots:
            rel = Path("audio", slot, f"{item:04d}.wav")
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            request = make_request(
                {"text": held["text"], "speaker": speaker, "adapter": adapter or BASE, "seed": config.seed},
                item,
                config,
                None,
                where,
                out=folder / rel,
            )
            clip = synth.speak(request)
            wave, rate = load_audio(request.out)  # what was written (16-bit, clipped), as a listener gets it
            waves[(system, item)] = wave
            out = {"audio": rel.as_posix(), "text": held["text"], "adapter": system, "speaker": speaker}
            out.update(scorer.score(wave, rate, held["text"], speaker))
            out.update(
                ended=clip.record["ended"], seed=clip.record["seed"], item=item, report_audio=rel.as_posix()
            )
            records.append(out)
        log.info(f"{item}/{len(held_out)}: {held['text'][:60]}")
    return records, waves


def score_existing(clips: Iterable[dict], references: list[dict], scorer: Scorer, folder: Path | None):
    """Score each clip record (and the references' real recordings); items group clips by their text."""
    items: dict[str, int] = {}
    slots: dict[str, str] = {BASE: BASE}
    records = []
    for ref in references:
        key = normalize(ref["text"])
        if key not in items:
            items[key] = len(items) + 1
            records.append(score_real(ref, items[key], scorer, folder, ref.get("_where", "")))
    for clip in clips:
        where = clip.get("_where", "")
        text = clip.get("text")
        if not isinstance(text, str) or not text.strip():
            raise VoxloraError(f'{where}: missing "text" (the words the clip should say)')
        wave, rate = load_audio(clip["audio"], where)
        speaker = clip.get("speaker", 0)
        speaker = speaker if isinstance(speaker, int) and not isinstance(speaker, bool) else 0
        item = items.setdefault(normalize(text), len(items) + 1)
        system = system_of(clip)
        out = {k: v for k, v in clip.items() if k != "_where"}
        out.update(adapter=system, speaker=speaker)
        out.update(scorer.score(wave, rate, text, speaker))
        out.update(ended=clip.get("ended"), item=item)
        if folder is not None:
            slot = slots.setdefault(system, f"adapter{len(slots)}")
            suffix, n = Path(clip["audio"]).suffix.lower() or ".wav", 1
            rel = Path("audio", slot, f"{item:04d}{suffix}")
            while (folder / rel).exists():  # the same text twice from one system
                n += 1
                rel = Path("audio", slot, f"{item:04d}-{n}{suffix}")
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip["audio"], folder / rel)
            out["report_audio"] = rel.as_posix()
        records.append(out)
    return records
