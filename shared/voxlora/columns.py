"""Which column holds the audio, the transcript and the speaker, in the layouts real datasets use.

One preference list serves the common layouts on the Hugging Face Hub and on disk:

    layout                              transcript                       speaker
    mozilla-foundation/common_voice_*   sentence                         client_id
    openslr/librispeech_asr             text                             speaker_id
    facebook/voxpopuli                  raw_text, else normalized_text   speaker_id
    LJSpeech format                     normalized_text, else text       (none)

The transcript is the first non-empty value among the present `TEXT_COLUMNS`, per row (VoxPopuli
leaves ``raw_text`` empty on some rows; ``raw_text`` keeps case and punctuation, which a TTS model
should see). ``--text-column`` / ``--audio-column`` / ``--speaker-column`` name any other column.

>>> pick_columns(["audio", "text", "normalized_text", "speaker_id"])
Columns(audio='audio', text=('normalized_text', 'text'), speaker='speaker_id')
"""

from dataclasses import dataclass

from voxlora.errors import VoxloraError

TEXT_COLUMNS = ("raw_text", "normalized_text", "sentence", "text", "transcription", "transcript")
SPEAKER_COLUMNS = ("speaker_id", "client_id", "speaker", "speaker_name")
AUDIO_COLUMNS = ("audio", "file_name", "audio_path", "audio_filepath", "file", "path")


@dataclass(frozen=True)
class Columns:
    audio: str
    text: tuple[str, ...]  # tried in order, per row
    speaker: str | None


def pick_columns(
    names,
    audio_columns=(),
    *,
    text: str | None = None,
    audio: str | None = None,
    speaker: str | None = None,
    what: str = "",
) -> Columns:
    """Choose the columns of a table with column ``names``; ``audio_columns`` are those typed as audio.

    Raises `VoxloraError` (one line, listing the columns there are) when a named column is absent or
    no transcript/audio column can be found. ``what`` names the dataset in messages.
    """
    names = list(names)
    pre = f"{what}: " if what else ""
    there = ", ".join(names) or "none"
    for option, value in (("--text-column", text), ("--audio-column", audio), ("--speaker-column", speaker)):
        if value is not None and value not in names:
            raise VoxloraError(f"{pre}no column {value!r} ({option}); the columns are: {there}")
    text_cols = (text,) if text else tuple(c for c in TEXT_COLUMNS if c in names)
    if not text_cols:
        raise VoxloraError(
            f"{pre}no transcript column found (looked for {', '.join(TEXT_COLUMNS)}); the columns are: {there}; pass --text-column"
        )
    audio_col = (
        audio
        or next((c for c in audio_columns if c in names), None)
        or next((c for c in AUDIO_COLUMNS if c in names), None)
    )
    if audio_col is None:
        raise VoxloraError(
            f"{pre}no audio column found (looked for {', '.join(AUDIO_COLUMNS)}); the columns are: {there}; pass --audio-column"
        )
    speaker_col = speaker or next((c for c in SPEAKER_COLUMNS if c in names), None)
    return Columns(audio=audio_col, text=text_cols, speaker=speaker_col)


def text_of(row: dict, columns: Columns) -> str | None:
    """The row's transcript: the first non-empty string among ``columns.text``, stripped; else None."""
    for c in columns.text:
        value = row.get(c)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def speaker_of(row: dict, columns: Columns) -> str | None:
    """The row's speaker name as a string ("1089", a client_id), or None when there is none."""
    if columns.speaker is None:
        return None
    value = row.get(columns.speaker)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()
