"""Higgs Audio v2 training inputs from records and cached codes: the processor's tensors, no codec.

``HiggsAudioV2Processor(text, audio, output_labels=True)`` runs the audio tokenizer on every clip of
every batch. Here the clips' codes come from the codes cache and everything else is the
processor's own steps, in its order, with its own methods (`build_delay_pattern`,
`get_audio_tokens`, the tokenizer and chat template): so for the same records the tensors are the
same (tests compare them), and the model's loss on them is the model's loss on the processor's.

A sample is a conversation (`conversation`): the system prompt; optionally a reference clip of the
same voice (its text as a user turn, its audio as the assistant's answer); the target text; the
target audio. Each clip's codes (K, T) become ``[bos] + codes + [eos]`` in the delay pattern
((T + 2 + K - 1, K), codebook k shifted right by k), and its ``<|AUDIO_OUT|>`` placeholder in the
text becomes one audio token per delayed frame (the last K - 1 as delay tokens).

Labels (``target_only=True``, how voxlora trains): audio labels on the target clip only (the
reference clip is context, -100); text labels from the target's assistant turn on (its
``<|audio_eos|>`` and ``<|eot_id|>``), so the model learns to speak and to stop, not to predict the
prompt. ``target_only=False`` gives exactly the processor's labels (every audio clip, every text
token but the audio, pad and audio-bos tokens).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from voxlora.chatml import SYSTEM_PROMPT

IGNORE = -100


def conversation(text: str, reference_text: str | None = None, system: str = SYSTEM_PROMPT) -> list[dict]:
    """The chat messages of one sample; the assistant turns hold audio (its codes come separately).

    >>> [m["role"] for m in conversation("Bye.", reference_text="Hi.")]
    ['system', 'user', 'assistant', 'user', 'assistant']
    """
    audio = {"role": "assistant", "content": [{"type": "audio"}]}
    messages = [{"role": "system", "content": system}]
    if reference_text is not None:
        messages += [{"role": "user", "content": reference_text}, audio]
    return messages + [{"role": "user", "content": text}, audio]


def prompt_text(processor, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def delayed(processor, codes: torch.Tensor) -> torch.Tensor:
    """(K, T) codes -> (T + 2 + K - 1, K): stream bos/eos added and the delay pattern built (processor's)."""
    codes = codes.long()[None]  # (1, K, T)
    bos = codes.new_full((*codes.shape[:2], 1), processor.audio_stream_bos_id)
    eos = codes.new_full((*codes.shape[:2], 1), processor.audio_stream_eos_id)
    return processor.build_delay_pattern(torch.cat([bos, codes, eos], dim=2))[0].transpose(0, 1)


@dataclass
class HiggsBatch:
    """What ``HiggsAudioV2ForConditionalGeneration.forward`` takes, plus the two label tensors."""

    input_ids: torch.Tensor  # (B, L) text ids, audio placeholders included, padded on the left
    attention_mask: torch.Tensor  # (B, L)
    audio_input_ids: torch.Tensor  # (B, F, K) every sample's clips, concatenated, padded with eos
    audio_input_ids_mask: torch.Tensor  # (B, F) True on real frames
    labels: torch.Tensor  # (B, L) text labels (-100 ignored)
    audio_labels: torch.Tensor  # (B, F, K) audio labels (-100 ignored)
    audio_positions: torch.Tensor  # (B, L) True on the audio and delay placeholders (the model's mask)

    def model_inputs(self) -> dict:
        names = ("input_ids", "attention_mask", "audio_input_ids", "audio_input_ids_mask")
        return {n: getattr(self, n) for n in names}

    def to(self, device) -> "HiggsBatch":
        return HiggsBatch(**{k: v.to(device) for k, v in vars(self).items()})

    @property
    def n_audio(self) -> int:
        """Audio targets (frames predicted, each with K codebook labels) after the causal shift."""
        return int(expanded_audio_labels(self)[:, 1:, 0].ne(IGNORE).sum())  # the same count in every codebook

    @property
    def n_text(self) -> int:
        return int(self.labels[:, 1:].ne(IGNORE).sum())


def build_batch(
    processor, samples: list[tuple[str, list[torch.Tensor]]], target_only: bool = True
) -> HiggsBatch:
    """``samples``: (chat text with one ``<|AUDIO_OUT|>`` per clip, that many (K, T) code tensors)."""
    texts, per_sample, target_frames = [], [], []
    for text, clips in samples:
        if text.count(processor.audio_token) != len(clips):
            raise ValueError(f"{len(clips)} clips for {text.count(processor.audio_token)} audio placeholders")
        ids = [delayed(processor, c) for c in clips]
        texts.append(_expand(text, processor.audio_token, [processor.get_audio_tokens(len(i)) for i in ids]))
        per_sample.append(torch.cat(ids, dim=0))  # (F_i, K)
        target_frames.append(len(ids[-1]))
    lengths = [len(a) for a in per_sample]
    longest = max(lengths)
    eos = processor.audio_stream_eos_id
    audio = torch.stack([F.pad(a, (0, 0, 0, longest - len(a)), value=eos) for a in per_sample])  # (B, F, K)
    audio_mask = torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]  # (B, F)

    enc = processor.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
    input_ids, attention_mask = enc["input_ids"], enc["attention_mask"]
    labels = input_ids.clone()
    tok = processor.tokenizer
    for special in (processor.audio_token_id, tok.pad_token_id, processor.audio_bos_token_id):
        labels[labels == special] = IGNORE
    labels[attention_mask == 0] = IGNORE  # the pad id may be a real token (Higgs pads with <|end_of_text|>)
    audio_labels = audio.clone()
    audio_labels[(audio_labels == processor.audio_stream_bos_id) | (audio_labels == eos)] = IGNORE

    if target_only:
        for b, (n_frames, n) in enumerate(zip(target_frames, lengths, strict=True)):
            audio_labels[b, : n - n_frames] = IGNORE  # reference clips are context only
            start = _last_assistant_start(processor, input_ids[b])
            labels[b, :start] = IGNORE
    positions = (input_ids == processor.audio_token_id) | (input_ids == processor.audio_delay_token_id)
    return HiggsBatch(input_ids, attention_mask, audio, audio_mask, labels, audio_labels, positions)


def _expand(text: str, token: str, replacements: list[str]) -> str:
    """Each ``token`` in ``text`` replaced by the next of ``replacements``, in order."""
    parts = text.split(token)
    return parts[0] + "".join(r + p for r, p in zip(replacements, parts[1:], strict=True))


def _last_assistant_start(processor, ids: torch.Tensor) -> int:
    """Index of the target's ``<|audio_out_bos|>``: where the target (assistant) turn's content starts."""
    where = (ids == processor.audio_bos_token_id).nonzero()
    return int(where[-1, 0]) if len(where) else 0


def expanded_audio_labels(batch: HiggsBatch) -> torch.Tensor:
    """(B, L, K): each frame's audio labels at its placeholder position in the text (-100 elsewhere).

    The model's own placement (``HiggsAudioV2ForConditionalGeneration.forward``): the audio and
    delay tokens of the text, in order, take the real frames of ``audio_input_ids``.
    """
    B, L = batch.input_ids.shape
    out = batch.input_ids.new_full((B, L, batch.audio_labels.shape[-1]), IGNORE)
    out[batch.audio_positions] = batch.audio_labels[batch.audio_input_ids_mask]
    return out
