"""voxlora's CSM generation loop (`families/csm/generate.py`) on the tiny CSM in fp32: the same codes as
transformers' generate (greedy and sampled), a batch gives each row the codes it gets alone, rows
stop on their own, and the KV caches are allocated once."""

import numpy as np
import pytest
import soundfile as sf
import torch
from voxlora.families.csm import generate as gen_module
from voxlora.families.csm.generate import CsmGenerator, Row, prompt_embeds
from voxlora.families.csm.prompt import build_inputs
from voxlora.families.csm.sample import generate_codes
from voxlora.turns import Turn, read_context_audio

LONG = "A much longer sentence, said slowly and with care, so that this prompt needs more positions. " * 3


@pytest.fixture(scope="module")
def bundle(tiny_csm):
    from voxlora.models.csm import load_csm

    return load_csm(str(tiny_csm), dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def context_turn(tmp_path_factory):
    t = np.arange(9600) / 24000
    path = tmp_path_factory.mktemp("ref") / "ref.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 24000)
    return Turn("A reference.", 1, read_context_audio(str(path), 24000))


def inputs_for(bundle, text, context=()):
    return build_inputs(bundle.processor, [*context, Turn(text, 0)], 24000)


@pytest.mark.parametrize("temperature", [0, 0.9])
def test_the_codes_equal_transformers_generate(bundle, context_turn, temperature):
    """Greedy: the same argmax; sampled: the same draws, in the same order, from the same seed."""
    model = bundle.model
    for seed, context in [(3, ()), (5, (context_turn,))]:
        inputs = inputs_for(bundle, "Hello there.", context)
        torch.manual_seed(seed)
        expected = generate_codes(model, inputs, 4, temperature, 50)  # transformers' generate
        [ours] = CsmGenerator(model, temperature, 50).generate([Row(prompt_embeds(model, inputs), 4, seed)])
        assert ours.shape == expected.shape == (4, 32)
        assert torch.equal(ours, expected)


def test_a_batch_gives_each_row_the_codes_it_gets_alone(bundle, context_turn):
    """Other text lengths (one prompt long enough that the batch's cache is longer than its own),
    seeds, budgets and context: padding and batching change no row's codes."""
    model = bundle.model
    prompts = [("Hi.", (), 3, 11), (LONG, (), 2, 12), ("Hello there, you.", (context_turn,), 4, 13)]
    rows = [Row(prompt_embeds(model, inputs_for(bundle, t, c)), n, s) for t, c, n, s in prompts]
    lengths = [r.embeds.shape[0] for r in rows]
    assert lengths[1] + 2 > gen_module.CACHE_BLOCK > lengths[0] + 3  # the batch's cache: 2 blocks, row 0's: 1
    generator = CsmGenerator(model, 0.9, 50)
    together = generator.generate(rows)
    alone = [generator.generate([r])[0] for r in rows]
    assert [len(c) for c in together] == [3, 2, 4]
    for a, b in zip(together, alone, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(together[0][:2], together[1])  # the rows are not all the same


class ForcedEnd(gen_module.Sampler):
    """The real sampler, except row ``row`` gets an end-of-audio frame as its frame ``frame``."""

    def __init__(self, sampler, row: int, frame: int, K: int = 32):
        self.__dict__.update(sampler.__dict__)
        self.row, self.frame, self.K, self.calls = row, frame, K, 0

    def __call__(self, logits, generators):
        codes = super().__call__(logits, generators)
        frame, codebook = divmod(self.calls, self.K)
        self.calls += 1
        if frame == self.frame and codebook < self.K - 1:
            codes[self.row] = 0
        return codes


def test_a_row_that_ends_stops_and_the_batch_ends_when_every_row_has(bundle):
    model = bundle.model
    inputs = [inputs_for(bundle, t) for t in ("One.", "Two words.", "Three more words.")]
    rows = [
        Row(prompt_embeds(model, x), n, seed) for x, n, seed in zip(inputs, (3, 6, 4), (1, 2, 3), strict=True)
    ]
    generator = CsmGenerator(model, 0.9, 50)
    generator.sample = ForcedEnd(generator.sample, row=1, frame=1)
    codes = generator.generate(rows)
    assert [len(c) for c in codes] == [3, 2, 4]  # row 1: one frame and its end-of-audio frame
    assert (codes[1][1, :-1] == 0).all() and not (codes[1][0, :-1] == 0).all()
    assert generator.sample.calls == 4 * 32  # the longest budget left (4 frames), then stopped

    alone = CsmGenerator(model, 0.9, 50)
    alone.sample = ForcedEnd(alone.sample, row=0, frame=1)
    [one] = alone.generate([Row(rows[1].embeds, 50, 2)])
    assert torch.equal(one, codes[1])  # same seed, same frames, up to its end
    assert alone.sample.calls == 2 * 32  # no frame after the end


def test_the_kv_caches_are_allocated_once_per_generation(bundle, monkeypatch):
    """Static: one backbone and one depth-decoder cache, their shapes fixed for every frame step."""
    made = []
    original = gen_module.KVCache.__init__

    def counting(self, *args):
        original(self, *args)
        made.append(tuple(self.k.shape))

    monkeypatch.setattr(gen_module.KVCache, "__init__", counting)
    model = bundle.model
    rows = [Row(prompt_embeds(model, inputs_for(bundle, t)), 3, 0) for t in ("A.", "B b b.")]
    CsmGenerator(model, 0.9, 50).generate(rows)
    cfg = model.config
    assert made == [
        (cfg.num_hidden_layers, 2, cfg.num_key_value_heads, gen_module.CACHE_BLOCK, 16),
        (cfg.depth_decoder_config.num_hidden_layers, 2, cfg.depth_decoder_config.num_key_value_heads, 32, 8),
    ]
