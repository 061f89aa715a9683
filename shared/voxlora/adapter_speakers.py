"""Who an adapter speaks as: the speakers it was trained on, kept in its ``voxlora.json``.

lora-train records them as ``"speakers": [{"id": 0, "name": "alice"}, ...]`` (the ids of the
records it trained on, ``--default-speaker`` for records without one; names from the records'
``speaker_name`` or from ``--speakers FILE``, the file winning). synth then needs no ``--speaker``
for a one-voice adapter, and takes a name where it takes an id::

    >>> meta = {"speakers": [{"id": 3, "name": "alice"}]}
    >>> pick_speaker(None, meta), pick_speaker("alice", meta), pick_speaker("1", meta)
    (3, 3, 1)
"""

from voxlora.errors import VoxloraError

DEFAULT_SPEAKER = 0  # CSM's first speaker: what synth speaks as when nothing says otherwise


def trained_speakers(records, default_speaker: int, names: dict[str, int] | None = None) -> list[dict]:
    """``[{"id", "name"?}]`` sorted by id, for the speakers in ``records`` (manifest dicts)."""
    found: dict[int, str | None] = {}
    for r in records:
        speaker = r.get("speaker")
        speaker = default_speaker if speaker is None or speaker == "" else int(speaker)
        name = r.get("speaker_name")
        if found.get(speaker) is None:
            found[speaker] = None if name is None else str(name)
    for name, speaker in (names or {}).items():
        if speaker in found:
            found[speaker] = name
    return [{"id": i, **({"name": found[i]} if found[i] is not None else {})} for i in sorted(found)]


def pick_speaker(requested, meta: dict | None, where: str = "--speaker") -> int:
    """The speaker id to speak as: ``requested`` (an id, a digit string or a name), else the
    adapter's single speaker, else `DEFAULT_SPEAKER`."""
    speakers = [s for s in (meta or {}).get("speakers") or [] if isinstance(s, dict) and "id" in s]
    if requested is None or requested == "":
        return int(speakers[0]["id"]) if len(speakers) == 1 else DEFAULT_SPEAKER
    if isinstance(requested, int) and not isinstance(requested, bool):
        return requested
    text = str(requested).strip()
    if text.isdigit():
        return int(text)
    for s in speakers:
        if s.get("name") == text:
            return int(s["id"])
    known = ", ".join(f"{s['name']} ({s['id']})" for s in speakers if s.get("name"))
    if not known:
        raise VoxloraError(f"{where} {text}: not a number, and the adapter names no speakers")
    raise VoxloraError(f"{where} {text}: no such speaker in the adapter; it knows {known}")


def adapter_meta(sidecar) -> dict:
    """An adapter's ``voxlora.json`` at ``sidecar`` (empty when there is none: a peft or mlx-lm adapter)."""
    from pathlib import Path

    from voxlora.jsonfile import read_json_object

    return read_json_object(sidecar) if sidecar and Path(sidecar).is_file() else {}
