"""--attention: the implementation asked for is the one the loaded model runs, and sdpa and eager
train to the same losses on the tiny CSM."""

import pytest
from voxlora.backends.torch.attention import reported
from voxlora.models.csm import load_csm
from voxlora.train.loop import train


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_loaded_model_runs_the_attention_asked_for(tiny_csm, attention):
    csm = load_csm(tiny_csm, attention=attention).model
    assert reported(csm) == attention
    assert csm.backbone_model.config._attn_implementation == attention
    assert csm.depth_decoder.model.config._attn_implementation == attention


def test_sdpa_and_eager_train_to_the_same_losses(setup):
    losses = {}
    for attention in ("sdpa", "eager"):
        model, store, config = setup(attention=attention, max_steps=2, log_every=1, lr=1e-3)
        losses[attention] = [r["loss"] for r in train(model, store, config)]
    assert losses["sdpa"] == pytest.approx(losses["eager"], rel=1e-5)
    assert losses["sdpa"][0] != losses["sdpa"][1]  # the second step saw trained weights
