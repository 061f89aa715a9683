"""The CSM prompt: context turns with audio, then the text to say; context clips read and resampled."""

import numpy as np
import pytest
import soundfile as sf
import torch
from voxlora.errors import VoxloraError
from voxlora.families.csm.prompt import Turn, build_inputs, conversation, read_context_audio


@pytest.fixture(scope="module")
def processor(tiny_csm):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_csm)


def tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def test_conversation_has_the_speaker_as_role_and_audio_on_context_turns():
    turns = [Turn("Ref.", 1, np.zeros(10, np.float32)), Turn("Hello.", 0)]
    assert conversation(turns) == [
        {"role": "1", "content": [{"type": "text", "text": "Ref."}, {"type": "audio"}]},
        {"role": "0", "content": [{"type": "text", "text": "Hello."}]},
    ]


def test_a_text_only_prompt_is_csm_1b_s_template(processor):
    inputs = build_inputs(processor, [Turn("Hi.", 2)], 24000)
    assert processor.tokenizer.decode(inputs["input_ids"][0]) == "<|begin_of_text|>[2]Hi.<|end_of_text|>"
    assert "input_values" not in inputs


def test_context_audio_becomes_one_audio_token_per_codec_frame(processor):
    clip = tone(1.0, 24000)  # 24000 samples -> 13 Mimi frames
    inputs = build_inputs(processor, [Turn("Ref.", 1, clip), Turn("Hello.", 0)], 24000)
    ids = inputs["input_ids"][0]
    assert int((ids == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum()) == 13
    assert inputs["input_values"].shape == (1, 1, 24000)
    assert inputs["input_values_cutoffs"].tolist() == [[24000]]
    text = processor.tokenizer.decode(ids[ids != processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")])
    assert (
        text
        == "<|begin_of_text|>[1]Ref.<|end_of_text|><|audio_eos|><|begin_of_text|>[0]Hello.<|end_of_text|>"
    )


def test_text_holding_a_special_token_is_refused(processor):
    with pytest.raises(VoxloraError, match="contains the model's special token '<|AUDIO|>'"):
        build_inputs(processor, [Turn("say <|AUDIO|> now", 0)], 24000)


def test_context_clips_are_mixed_to_mono_and_resampled_to_the_model_rate(tmp_path):
    sf.write(tmp_path / "ref.wav", tone(0.5, 48000, channels=2), 48000)
    x = read_context_audio(tmp_path / "ref.wav", 24000)
    assert x.dtype == np.float32 and x.ndim == 1 and abs(len(x) - 12000) <= 1


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_bytes(b"not audio at all"), r"ref\.wav: context clip: unreadable audio"),
        (lambda p: sf.write(p, np.zeros(2400, np.float32), 24000), r"ref\.wav: context clip: silent"),
        (lambda p: None, r"ref\.wav: context clip: no such file"),
    ],
)
def test_unusable_context_clips_give_one_line(tmp_path, write, message):
    write(tmp_path / "ref.wav")
    with pytest.raises(VoxloraError, match=message):
        read_context_audio(tmp_path / "ref.wav", 24000)


def test_the_model_encodes_context_audio_it_is_given(tiny_csm, processor):
    from voxlora.models.csm import load_csm

    model = load_csm(tiny_csm).model
    inputs = build_inputs(processor, [Turn("Ref.", 1, tone(0.3, 24000)), Turn("Hi.", 0)], 24000)
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape[:2] == inputs["input_ids"].shape
