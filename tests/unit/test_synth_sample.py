"""Sampling only decodable codes, trimming at the end-of-audio frame, decoding or failing clearly."""

from types import SimpleNamespace as NS

import pytest
import torch
from voxlora.errors import VoxloraError
from voxlora.families.csm.sample import decode, sampling_kwargs, trim_at_eos, undecodable_ids
from voxlora.models.csm import load_csm

CONFIG = NS(vocab_size=67, codec_config=NS(codebook_size=64))


@pytest.fixture(scope="module")
def bundle(tiny_csm):
    return load_csm(tiny_csm)


def test_the_ids_past_the_codebook_are_suppressed_in_both_samplers():
    kwargs = sampling_kwargs(CONFIG, temperature=0.7, top_k=20)
    assert kwargs["suppress_tokens"] == kwargs["depth_decoder_suppress_tokens"] == [64, 65, 66]
    assert kwargs["do_sample"] is kwargs["depth_decoder_do_sample"] is True
    assert kwargs["temperature"] == kwargs["depth_decoder_temperature"] == 0.7
    assert kwargs["top_k"] == kwargs["depth_decoder_top_k"] == 20


def test_temperature_zero_is_greedy_and_top_k_zero_is_off():
    greedy = sampling_kwargs(CONFIG, temperature=0, top_k=50)
    assert greedy["do_sample"] is greedy["depth_decoder_do_sample"] is False
    assert "temperature" not in greedy
    assert sampling_kwargs(CONFIG, temperature=1.0, top_k=0)["top_k"] is None


def test_csm_1b_sizes():
    assert undecodable_ids(NS(vocab_size=2051, codec_config=NS(codebook_size=2048))) == [2048, 2049, 2050]


@pytest.mark.parametrize(
    "codes, kept, ended",
    [
        ([[5, 6, 7], [1, 2, 3]], 2, False),
        ([[5, 6, 7], [0, 0, 9], [1, 1, 1]], 1, True),  # the last codebook is not checked, as in transformers
        ([[0, 0, 0], [1, 2, 3]], 0, True),
        ([[0, 4, 0], [0, 0, 0]], 1, True),  # a 0 in some codebooks is an ordinary code
    ],
)
def test_trim_at_eos(codes, kept, ended):
    out, was_ended = trim_at_eos(torch.tensor(codes))
    assert (len(out), was_ended) == (kept, ended)


def test_decode_gives_1920_samples_per_frame(bundle):
    codes = torch.randint(0, 64, (5, 32), generator=torch.Generator().manual_seed(0))
    assert decode(bundle.codec, codes).shape == (5 * 1920,)


def test_no_frame_before_eos_is_an_error_not_silence(bundle):
    with pytest.raises(VoxloraError, match="ended the clip before any audio"):
        decode(bundle.codec, torch.zeros(0, 32, dtype=torch.long))


def test_codes_the_codec_cannot_decode_are_refused(bundle):
    codes = torch.full((3, 32), 5)
    codes[1, 4] = 65
    with pytest.raises(VoxloraError, match=r"outside the codec's 0\.\.63"):
        decode(bundle.codec, codes)
