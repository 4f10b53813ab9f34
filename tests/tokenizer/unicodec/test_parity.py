"""Our UniCodec against the official code on the same random weights (fixture made by
tests/fixtures/make_unicodec_parity.py): identical codes per domain, audio within 1e-4."""

from __future__ import annotations

import pytest
import torch

from sonotok.tokenizer.unicodec.configs import DOMAINS


def test_encoder_output_matches_the_reference(tiny, cases):
    with torch.no_grad():
        z = tiny.encoder_features(cases["input_0"])
    assert z.shape == cases["encoder_0"].shape == (113, 64)
    torch.testing.assert_close(z, cases["encoder_0"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("clip", [0, 1])
@pytest.mark.parametrize("domain", DOMAINS)
def test_codes_are_identical_and_audio_within_1e4(tiny, cases, clip, domain):
    wave = cases[f"input_{clip}"]
    codes = tiny.encode_codes(wave) if domain == tiny.domain else None
    with torch.no_grad():
        codes = tiny.codes_waves([wave], domain=domain)[0] if codes is None else codes
    reference = cases[f"codes_{clip}_{domain}"]
    assert torch.equal(codes[:, 0], reference)
    start, stop = tiny.config.partition(domain)
    assert start <= int(reference.min()) and int(reference.max()) < stop
    audio = tiny.decode(codes)
    assert audio.shape == cases[f"audio_{clip}_{domain}"].shape
    assert (audio - cases[f"audio_{clip}_{domain}"]).abs().max() < 1e-4


def test_encode_with_a_domain_gives_the_reference_code_vectors(tiny, cases):
    latents = tiny.encode(cases["input_1"], domain="music")
    expected = tiny.embed_codes(cases["codes_1_music"][None, :, None])[0]
    torch.testing.assert_close(latents, expected, atol=1e-6, rtol=0)
