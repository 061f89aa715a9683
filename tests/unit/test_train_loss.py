"""voxlora's loss on prepared batches equals CsmForConditionalGeneration's on the processor's inputs."""

import pytest
import torch
from voxlora.backends.torch.codec import encode
from voxlora.families.csm.batches import make_batch
from voxlora.families.csm.loss import csm_loss
from voxlora.families.csm.sequences import Clip, build_store, text_ids
from voxlora.models.csm import load_csm

from tests.datagen import speechlike


@pytest.fixture
def bundle(tiny_csm):  # noqa: F811
    return load_csm(tiny_csm)


def transformers_loss(bundle, text: str, speaker: int, audio):
    """The transformers recipe: CsmProcessor's chat template with labels, Mimi inside the model."""
    conversation = [
        {"role": str(speaker), "content": [{"type": "text", "text": text}, {"type": "audio", "audio": audio}]}
    ]
    inputs = bundle.processor.apply_chat_template(
        conversation, tokenize=True, return_dict=True, output_labels=True, depth_decoder_labels_ratio=1.0
    )
    return bundle.model(**inputs), inputs


def voxlora_loss(bundle, model, text, speaker, audio):
    clip = Clip("t", text_ids(bundle.processor, text, speaker), encode(bundle.codec, audio))
    store = build_store([clip], bundle.config, 12.5)
    batch = make_batch(store, [0], fraction=1.0)
    backbone, decoder = csm_loss(model, batch)
    return backbone / batch.n_backbone, decoder / batch.n_decoder, batch


@pytest.mark.parametrize("seconds, speaker", [(0.7, 0), (1.3, 5)])
def test_same_loss_as_transformers_for_one_clip(bundle, seconds, speaker):
    audio = speechlike(seconds, seed=3)
    text = "The birch canoe slid on the smooth planks."
    with torch.no_grad():
        ref, inputs = transformers_loss(bundle, text, speaker, audio)
        backbone, decoder, batch = voxlora_loss(bundle, bundle.model, text, speaker, audio)
    assert torch.equal(batch.tokens[0], inputs["input_ids"][0])  # the same positions, token for token
    assert batch.codes[0].unique().numel() > 10  # real codes, not a degenerate codec
    assert abs(float(backbone) - float(ref.backbone_loss)) < 1e-5
    assert abs(float(decoder) - float(ref.depth_decoder_loss)) < 1e-5
    assert abs(float(backbone + decoder) - float(ref.loss)) < 1e-5


def test_same_loss_and_gradients_through_a_lora_model(bundle):
    from voxlora.lora_options import LoraSettings
    from voxlora.peft_bridge import apply_adapter, new_adapter_for

    adapter = new_adapter_for(bundle.model, LoraSettings(targets=("all-linear", "lm_head")), seed=0)
    gen = torch.Generator().manual_seed(1)
    adapter.lora = {m: (A, torch.randn(B.shape, generator=gen) * 0.05) for m, (A, B) in adapter.lora.items()}
    model, _ = apply_adapter(bundle.model, adapter, trainable=True)
    audio, text = speechlike(0.6, seed=4), "Rice is often served in round bowls."
    ref, _ = transformers_loss(bundle, text, 2, audio)
    ref.loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    backbone, decoder, _ = voxlora_loss(bundle, model, text, 2, audio)
    (backbone + decoder).backward()
    assert abs(float((backbone + decoder).detach()) - float(ref.loss.detach())) < 1e-5
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, ref_grads[name], atol=1e-6, rtol=1e-4), name


def test_padding_changes_nothing(bundle):
    clips = [
        Clip("a", text_ids(bundle.processor, "Hi.", 0), encode(bundle.codec, speechlike(0.3, seed=1))),
        Clip(
            "b",
            text_ids(bundle.processor, "A longer sentence here.", 1),
            encode(bundle.codec, speechlike(0.9, seed=2)),
        ),
    ]
    store = build_store(clips, bundle.config, 12.5)
    with torch.no_grad():
        together = csm_loss(bundle.model, make_batch(store, [0, 1]))
        alone = [csm_loss(bundle.model, make_batch(store, [i])) for i in (0, 1)]
    for part in (0, 1):
        assert torch.isclose(together[part], alone[0][part] + alone[1][part], rtol=1e-6, atol=0)


def test_only_chosen_frames_go_through_the_depth_decoder(bundle):
    clip = Clip("a", text_ids(bundle.processor, "Hi.", 0), encode(bundle.codec, speechlike(2.0, seed=1)))
    store = build_store([clip], bundle.config, 12.5)
    rows = []
    hook = bundle.model.depth_decoder.model.register_forward_hook(
        lambda m, args, kw, out: rows.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            csm_loss(bundle.model, make_batch(store, [0], fraction=1 / 16))
            csm_loss(bundle.model, make_batch(store, [0], fraction=1.0))
    finally:
        hook.remove()
    frames = clip.codes.shape[1]  # 25 frames: 2 of them (ceil(25/16)) plus the end frame
    assert rows == [2 + 1, frames + 1]


def test_as_many_decoder_frames_as_codebooks(bundle):
    """31 frames + the end frame = 32 rows = K: a shape transformers' mask code once tripped on."""
    audio = speechlike(31 * 1920 / 24000, seed=5)
    with torch.no_grad():
        ref, _ = transformers_loss(bundle, "Four hours of steady work faced us.", 1, audio)
        backbone, decoder, batch = voxlora_loss(
            bundle, bundle.model, "Four hours of steady work faced us.", 1, audio
        )
    assert int(batch.decoder.sum()) == bundle.config.num_codebooks
    assert abs(float(backbone + decoder) - float(ref.loss)) < 1e-5
