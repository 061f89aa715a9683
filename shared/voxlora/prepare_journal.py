"""mkmanifest --out-dir again over a grown corpus writes only the new clips.

After each WAV it writes, mkmanifest appends a line to ``.mkmanifest.jsonl`` in ``--out-dir``: the
output's name, the sha256 of its source file, the settings that shape it (``--sample-rate``), and
what the clip measured (source seconds, output duration and rate). When mkmanifest then trims and
normalises the WAV in place, the settings also hold the cleaning (trim margin, loudness target) and
a second line for the file adds the result (``cleaned``: duration and ``quality``). Next time, a clip whose output
is listed with the same source hash and settings, and is still a whole WAV, is not decoded,
checked, resampled or cleaned again: its record is made from the line (``--min-duration`` and
``--max-duration`` are checked against the recorded seconds), the same record a full run makes.
Hashing a file is much cheaper than decoding and resampling it. A changed source, other settings
or a damaged output make the clip again. Lines cut short by a kill are skipped.
"""

import json
from pathlib import Path

JOURNAL = ".mkmanifest.jsonl"


def settings_key(sample_rate: int | None, clean: dict | None = None) -> str:
    """What shapes an output WAV besides its source (mono 16-bit PCM always; ``clean``: trim, margin, loudness)."""
    settings = {"sample_rate": sample_rate, "format": "wav-pcm16-mono"}
    if clean is not None:
        settings["clean"] = clean
    return json.dumps(settings, sort_keys=True)


def whole_wav(path) -> bool:
    """A WAV at ``path`` that opens and holds every byte its header promises."""
    import soundfile as sf

    from voxlora.audio import _WAV_DATA

    try:
        info = sf.info(str(path))
    except Exception:
        return False
    short = _WAV_DATA.search(info.extra_info or "")
    return info.frames > 0 and not (short and int(short.group(2)) < int(short.group(1)))


class Journal:
    """The lines of ``out_dir/.mkmanifest.jsonl`` by output name; `add` appends one."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / JOURNAL
        self.entries: dict[str, dict] = {}
        self.reused = self.written = 0
        self.kept: dict[str, dict] = {}  # outputs reused this run, already cleaned: name -> ``cleaned``
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                    self.entries[entry["file"]] = entry
        self._f = None

    def get(self, dest: str) -> dict | None:
        return self.entries.get(Path(dest).name)

    def add(self, entry: dict) -> None:
        from voxlora.atomic import writing

        with writing(self.path):  # a full disk names the journal
            if self._f is None:
                self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._f.write(json.dumps(entry) + "\n")
            self._f.flush()
        self.entries[entry["file"]] = entry

    def cleaned(self, dest: str) -> dict | None:
        """The noted cleaning result of ``dest`` when it was reused this run (not to be cleaned again)."""
        return self.kept.get(Path(dest).name)

    def note_cleaned(self, dest: str, duration: float, quality: dict) -> None:
        """Add the cleaning result to the line of ``dest`` written this run."""
        entry = self.get(dest)
        if entry is not None:
            self.add({**entry, "cleaned": {"duration": duration, "quality": quality}})

    def close(self) -> None:
        if self._f is not None:
            from voxlora.atomic import writing

            f, self._f = self._f, None
            with writing(self.path):
                f.close()

    def summary(self) -> str | None:
        if not self.reused:
            return None
        return f"{self.reused} clips already in {self.path.parent} (same source and settings), {self.written} written"
