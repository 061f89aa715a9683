"""Higgs Audio v2's ChatML voice-cloning records (``mkmanifest --to chatml``): clips paired by speaker.

Higgs Audio learns voice cloning from conversations in which a reference clip of a speaker (its
text as the user turn, its audio as the assistant's) comes before the text the same voice must
speak, answered by the target clip. One record, as boson_multimodal's ChatMLSample reads it::

    {"messages": [
        {"role": "system", "content": "Generate audio following instruction."},
        {"role": "user", "content": "<reference text>"},
        {"role": "assistant", "content": {"type": "audio", "audio_url": "/abs/ref.wav"}},
        {"role": "user", "content": "<target text>"},
        {"role": "assistant", "content": {"type": "audio", "audio_url": "/abs/target.wav"}}],
     "speaker": 3,
     "misc": {"reference": {...manifest record}, "target": {...manifest record}}}

``misc`` carries both manifest records whole (duration, sample rate, keys voxlora does not know), so
nothing is lost and `clips` gives them back. Pairing streams: each clip of a speaker is the target
of one record, its reference the clip of that speaker seen just before it; the first clip is the
reference of the second and, once the second has come, the target of a record of its own (with the
second as reference). A speaker with one clip gives no record. Records without a speaker are taken
as one voice (a single-speaker corpus); give ``speaker`` or ``speaker_name`` for several.
"""

from collections.abc import Iterable, Iterator

SYSTEM_PROMPT = "Generate audio following instruction."  # Higgs Audio's default system message


def to_chatml(reference: dict, target: dict, system: str = SYSTEM_PROMPT) -> dict:
    """One ChatML voice-cloning record from two manifest records of the same speaker.

    >>> r = to_chatml({"audio": "/a.wav", "text": "Hi."}, {"audio": "/b.wav", "text": "Bye."})
    >>> [m["role"] for m in r["messages"]], r["messages"][4]["content"]
    (['system', 'user', 'assistant', 'user', 'assistant'], {'type': 'audio', 'audio_url': '/b.wav'})
    """
    record = {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": reference["text"]},
            {"role": "assistant", "content": {"type": "audio", "audio_url": reference["audio"]}},
            {"role": "user", "content": target["text"]},
            {"role": "assistant", "content": {"type": "audio", "audio_url": target["audio"]}},
        ],
    }
    if target.get("speaker") is not None:
        record["speaker"] = target["speaker"]
    record["misc"] = {"reference": reference, "target": target}
    return record


def clips(record: dict) -> tuple[dict, dict]:
    """The (reference, target) clips of a ChatML record, as {"audio", "text", ...}: the inverse of
    `to_chatml` (manifest keys from ``misc`` when present, else from the messages alone)."""
    turns = record["messages"]
    audio = [m for m in turns if m["role"] == "assistant" and isinstance(m["content"], dict)]
    texts = [m["content"] for m in turns if m["role"] == "user"]
    misc = record.get("misc") or {}
    out = []
    for key, text, turn in zip(("reference", "target"), texts[-2:], audio[-2:], strict=True):
        out.append({**misc.get(key, {}), "audio": turn["content"]["audio_url"], "text": text})
    return out[0], out[1]


def as_record(record: dict) -> dict:
    """A ChatML record as the manifest record of its target, its reference clip kept under ``reference``.

    How lora-train reads ``mkmanifest --to chatml`` output (Higgs Audio v2 trains on the target with
    the reference clip as context).

    >>> r = as_record(to_chatml({"audio": "/a.wav", "text": "Hi."}, {"audio": "/b.wav", "text": "Bye."}))
    >>> r["audio"], r["text"], r["reference"]
    ('/b.wav', 'Bye.', {'audio': '/a.wav', 'text': 'Hi.'})
    """
    try:
        reference, target = clips(record)
    except (KeyError, TypeError, ValueError, AttributeError):
        return {
            k: v for k, v in record.items() if k != "messages"
        }  # the manifest check names what is missing
    return {**target, "reference": {"audio": reference["audio"], "text": reference["text"]}}


def pair_by_speaker(records: Iterable[dict], unpaired: list | None = None) -> Iterator[dict]:
    """ChatML records from manifest records, streaming (see the module docstring for the pairing).

    Speakers left with a single clip are appended to ``unpaired`` (when given) at the end.

    >>> recs = [{"audio": f"/{n}.wav", "text": n, "speaker": 0} for n in "abc"]
    >>> [(r["misc"]["reference"]["text"], r["misc"]["target"]["text"]) for r in pair_by_speaker(recs)]
    [('b', 'a'), ('a', 'b'), ('b', 'c')]
    """
    last: dict = {}  # speaker -> the clip seen last
    alone: dict = {}  # speaker -> its first clip, until a second one comes
    for record in records:
        speaker = record.get("speaker")
        if speaker not in last:
            last[speaker] = alone[speaker] = record
            continue
        if speaker in alone:
            yield to_chatml(record, alone.pop(speaker))
        yield to_chatml(last[speaker], record)
        last[speaker] = record
    if unpaired is not None:
        unpaired.extend(alone)
