"""hf-fetch again into the same folder fetches only what is missing, and prints what a whole run prints.

Every clip is written atomically (`audio.write_wav`), so a WAV at its final name is whole; a kill
leaves only a hidden ``.NAME.XXXX.tmp``, removed (and its clip fetched again) by the next run. After
each clip, a line in ``.hf-fetch.jsonl`` in ``--out-dir`` says which settings wrote it (a hash of the
dataset, configuration, split, sample rate and columns). A clip is kept when that file says these
settings wrote it and its header still reads as voxlora writes them (mono 16-bit PCM WAV, as many
bytes as the header promises); its record is made from the header (duration, sample rate) and the
row (text, speaker), the same as a fresh fetch's. Anything else is fetched again.
"""

import hashlib
import json
import logging
from pathlib import Path

from voxlora.atomic import recover, writing

JOURNAL = ".hf-fetch.jsonl"
log = logging.getLogger("voxlora.hf")


class FetchedClips:
    """What earlier hf-fetch runs left in ``out_dir``, and counts of kept, fetched and redone clips."""

    def __init__(self, out_dir, settings: dict):
        self.out_dir = Path(out_dir)
        self.kept = self.fetched = 0
        self.redone = len([p for p in recover(self.out_dir) if ".wav." in p.name])
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.written: set[str] = set()
        journal = self.out_dir / JOURNAL
        if journal.is_file():
            for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # a line cut short by a kill
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                    (self.written.add if entry.get("settings") == self.key else self.written.discard)(
                        entry["file"]
                    )
        self._journal = None

    def existing(self, path: Path) -> tuple[int, int] | None:
        """(frames, sample rate) of a whole WAV these settings wrote at ``path`` earlier, else None."""
        if path.name not in self.written or not path.is_file():
            return None
        import soundfile as sf

        from voxlora.audio import _WAV_DATA

        try:
            info = sf.info(str(path))
        except Exception:
            return None
        short = _WAV_DATA.search(info.extra_info or "")  # libsndfile notes a data chunk cut short
        if short and int(short.group(2)) < int(short.group(1)):
            return None
        if info.channels != 1 or info.subtype != "PCM_16" or info.format != "WAV" or info.frames == 0:
            return None
        return info.frames, info.samplerate

    def wrote(self, path: Path) -> None:
        """Note that these settings wrote ``path`` (whole: call it after the atomic write)."""
        with writing(self.out_dir / JOURNAL):  # a full disk names the journal
            if self._journal is None:
                self._journal = open(self.out_dir / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115 - close()
            self._journal.write(json.dumps({"file": path.name, "settings": self.key}) + "\n")
            self._journal.flush()

    def close(self) -> None:
        if self._journal is not None:
            journal, self._journal = self._journal, None
            with writing(self.out_dir / JOURNAL):
                journal.close()

    def summary(self) -> str | None:
        """``kept 3 clips fetched before, fetched 5 (1 half-written one again)``, when anything was kept."""
        if not (self.kept or self.redone):
            return None
        line = f"kept {self.kept} clip{'s' if self.kept != 1 else ''} fetched before, fetched {self.fetched}"
        if self.redone:
            line += f" ({self.redone} half-written one{'s' if self.redone != 1 else ''} again)"
        return line
