"""Speaker names -> small stable integers, the ``speaker`` field CSM and the trainer read.

Corpora name speakers with strings (LibriTTS "1089", Common Voice's 128-hex ``client_id``,
a dataset's ``speaker_id`` column). `SpeakerMap` numbers them 0, 1, 2, ... in the order they are first
seen. Both data tools see their input in a fixed order (mkmanifest sorts folder listings, hf-fetch
reads rows in dataset order), so the same input always gives the same numbers, and a stream can be
numbered without reading it twice.

To keep numbers across runs and datasets, pass the same ``--speakers FILE`` (a JSON object
``{"name": id}``) each time: known names keep their id, new names get the next free one, and the file
is rewritten with the result.

>>> m = SpeakerMap()
>>> m("1089"), m("121"), m("1089")
(0, 1, 0)
"""

import json
from pathlib import Path

from voxlora.atomic import atomic_write_text
from voxlora.errors import VoxloraError
from voxlora.jsonfile import read_json_object


class SpeakerMap:
    """name -> id in first-seen order; ids loaded from a file are kept."""

    def __init__(self, known: dict[str, int] | None = None):
        self.ids: dict[str, int] = dict(known or {})

    def __call__(self, name) -> int:
        name = str(name)
        if name not in self.ids:
            self.ids[name] = max(self.ids.values(), default=-1) + 1
        return self.ids[name]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, path) -> "SpeakerMap":
        """The map saved in ``path``; an empty map when the file does not exist yet."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            data = read_json_object(path)
        except VoxloraError as e:  # "<path>: not valid JSON (…)" or "<path>: expected a JSON object"
            raise VoxloraError(f"{path}: not a speakers file ({str(e).removeprefix(f'{path}: ')})") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in data.values()):
            raise VoxloraError(f'{path}: not a speakers file (expected a JSON object {{"name": id, ...}})')
        return cls(data)

    def save(self, path) -> None:
        """Write ``{"name": id}`` (sorted by id) atomically."""
        ordered = dict(sorted(self.ids.items(), key=lambda kv: kv[1]))
        atomic_write_text(path, json.dumps(ordered, ensure_ascii=False, indent=1) + "\n")

    def describe(self, limit: int = 10) -> str:
        """``3 speakers: 1089=0, 121=1, 237=2`` (long names shortened), for the log."""
        items = sorted(self.ids.items(), key=lambda kv: kv[1])
        shown = ", ".join(f"{name if len(name) <= 12 else name[:8] + '…'}={i}" for name, i in items[:limit])
        more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
        return f"{len(items)} speaker{'s' if len(items) != 1 else ''}: {shown}{more}"
