"""UniCodec's behaviour as a sonotok tokenizer: facts, lengths, batches, domains in the codes,
long inputs, bad inputs and the training view."""

from __future__ import annotations

import pytest
import torch

from sonotok.core.audio import AudioInputError
from sonotok.core.errors import ConfigError
from sonotok.tokenizer.unicodec import UnicodecConfig, UnicodecTokenizer
from sonotok.tokenizer.unicodec import family as family_module


def test_released_configuration_facts():
    with torch.device("meta"):
        model = UnicodecTokenizer(UnicodecConfig())
    assert (model.sample_rate, model.frame_rate, model.hop_samples) == (24000, 75.0, 320)
    assert (model.codebook_size, model.num_codebooks, model.latent_dim) == (16384, 1, 512)
    assert model.bitrate == pytest.approx(1050.0)
    assert UnicodecConfig().partition("music") == (4096, 8192)
    assert UnicodecConfig().partition("sound") == (8192, 16384)


def test_lengths_are_exact(tiny, cases):
    wave = cases["input_0"]  # 9001 samples, hop 80
    codes = tiny.encode_codes(wave)
    assert codes.shape == (tiny.num_latent_frames(9001), 1) == (113, 1)
    assert tiny.decode(codes).shape == (113 * 80,)
    assert tiny.reconstruct(wave).shape == (9001,)
    assert tiny.reconstruct(wave[:8000].numpy(), sample_rate=16000).shape == (8000,)


def test_mixed_length_batch_equals_one_by_one(tiny, cases):
    a, b = cases["input_0"], cases["input_1"]
    batch = torch.zeros(2, a.numel())
    batch[0], batch[1, : b.numel()] = a, b
    mask = torch.zeros_like(batch, dtype=torch.bool)
    mask[0], mask[1, : b.numel()] = True, True
    codes = tiny.encode_codes(batch, attention_mask=mask)
    alone = [tiny.encode_codes(a), tiny.encode_codes(b)]
    assert torch.equal(codes[0], alone[0]) and torch.equal(codes[1, :55], alone[1])
    assert (codes[1, 55:] == 0).all()
    listed = tiny.encode([a, b])
    assert torch.equal(listed[1], tiny.encode(b))
    recon = tiny.reconstruct(batch, attention_mask=mask)
    torch.testing.assert_close(recon[1, : b.numel()], tiny.reconstruct(b), atol=1e-6, rtol=0)


def test_the_domain_is_recoverable_from_the_codes(tiny, cases):
    for domain in ("speech", "music", "sound"):
        codes = tiny.codes_waves([cases["input_0"]], domain=domain)[0]
        meta = tiny.code_metadata(codes)
        assert meta["domain"] == domain and meta["segments"] == [[0, 113, domain]]


def test_features_before_quantisation_are_offered(tiny, cases):
    z = tiny.encode(cases["input_1"], features="encoder")
    assert z.shape == (55, 64)
    assert not torch.equal(z, tiny.encode(cases["input_1"]))


def test_chunked_encoding_and_decoding(tiny, cases, monkeypatch):
    wave = torch.cat([cases["input_0"]] * 3)  # 27003 samples: 338 frames
    whole = tiny.encode(wave)
    monkeypatch.setattr(family_module, "CONTEXT_FRAMES", 400)  # context covers all: exact
    torch.testing.assert_close(tiny.encode(wave, chunk_frames=100), whole, atol=1e-5, rtol=0)
    codes = tiny.codes_waves([wave], chunk_frames=100)[0]  # quantised 100 frames at a time
    assert torch.equal(codes, tiny.encode_codes(wave))
    torch.testing.assert_close(
        tiny.decode(whole, chunk_frames=100), tiny.decode(whole), atol=1e-5, rtol=0
    )
    monkeypatch.setattr(family_module, "CONTEXT_FRAMES", 20)  # bounded: close, not equal
    chunked = tiny.decode(whole, chunk_frames=100)
    assert chunked.shape == (338 * 80,)
    assert (chunked - tiny.decode(whole)).abs().max() < 0.5 * tiny.decode(whole).abs().max()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.encode(torch.zeros(8000), domain="speach"), ConfigError, "speach"),
        (lambda m: m.encode(torch.zeros(40)), AudioInputError, "too short"),
        (lambda m: m.encode(torch.full((8000,), float("nan"))), AudioInputError, "NaN"),
        (lambda m: m.decode(torch.tensor([[3], [999]])), ConfigError, "999"),
        (lambda m: UnicodecTokenizer(m.config, domain="noise"), ConfigError, "noise"),
    ],
)
def test_bad_inputs_raise_clear_errors(tiny, call, error, match):
    with pytest.raises(error, match=match):
        call(tiny)


def test_training_view_returns_audio_codes_and_losses(tiny, cases):
    model = UnicodecTokenizer(tiny.config).train()
    wave = torch.stack([cases["input_0"][:4000], cases["input_1"][:4000]])
    audio, codes, losses = model(wave, ["speech", "sound"])
    assert audio.shape == (2, 4000) and codes.shape == (2, 50)
    assert int(codes[0].max()) < 64 and int(codes[1].min()) >= 128
    (audio.square().mean() + losses["commit"]).backward()
    assert model.quantizer.embedding.weight.grad is None  # SimVQ: the codebook is frozen
    assert model.quantizer.proj.weight.grad is not None
    assert model.encoder.layers[0].moe.gate.grad is not None
