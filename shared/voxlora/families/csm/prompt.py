"""The prompt CSM speaks from: context turns (text + audio) and then the text to say.

CSM is a conversational model: it continues a conversation. Voice cloning is giving it reference
clips of the voice, with their transcripts, as earlier turns; the last turn is the new text, with
no audio, and the model generates that audio. With the chat template of `sesame/csm-1b` a prompt
reads (one turn per line here)::

    <|begin_of_text|>[0]Reference one.<|end_of_text|><|AUDIO|><|audio_eos|>
    <|begin_of_text|>[0]Hello there.<|end_of_text|>

The processor expands each ``<|AUDIO|>`` into one token per codec frame of its clip, and the model
encodes the clips with its codec inside ``generate``.
"""

from voxlora.errors import VoxloraError
from voxlora.turns import Turn, read_context_audio  # noqa: F401  (the prompt's parts, for callers)


def conversation(turns: list[Turn]) -> list[dict]:
    """CSM chat messages for ``turns``: role is the speaker id, content is the text (+ audio)."""
    messages = []
    for turn in turns:
        content = [{"type": "text", "text": turn.text}]
        if turn.audio is not None:
            content.append({"type": "audio"})
        messages.append({"role": str(turn.speaker), "content": content})
    return messages


def build_inputs(processor, turns: list[Turn], sample_rate: int):
    """Model inputs for ``turns`` (the last one is what to say): input_ids, attention_mask, and the
    context audio as input_values / input_values_cutoffs when any turn has audio."""
    if not turns or turns[-1].audio is not None:
        raise VoxloraError("internal: the last turn must be text to speak, without audio")
    special = [
        t.content for t in processor.tokenizer.added_tokens_decoder.values() if t.special and t.content
    ]
    for turn in turns:
        found = [t for t in special if t in turn.text]
        if found:
            raise VoxloraError(f"text {turn.text[:40]!r} contains the model's special token {found[0]!r}")
    prompt = processor.apply_chat_template(conversation(turns), tokenize=False)
    clips = [t.audio for t in turns if t.audio is not None]
    if clips:
        return processor(text=prompt, audio=clips, sampling_rate=sample_rate)
    return processor(text=prompt)
