"""The tokenizer interface on the reduced 6kbps and 0k75bps models: facts, exact lengths,
mixed-length batches, chunked (bounded-memory) processing, bad inputs, the training path."""

from __future__ import annotations

import math

import pytest
import torch

from sonotok.core.audio import AudioInputError
from sonotok.tokenizer.sqcodec import OFFICIAL_CONFIGS, SQCodecTokenizer
from sonotok.tokenizer.sqcodec.chunking import decode_chunked
from sonotok.tokenizer.sqcodec.fsq import FSQ

from .conftest import load_tiny


def test_facts_follow_the_release_table():
    model = SQCodecTokenizer(OFFICIAL_CONFIGS["6kbps"].replace(feature_dim=12))
    assert model.sample_rate == 16000 and model.hop_samples == 45
    assert model.frame_rate == pytest.approx(355.5556, abs=1e-4)
    assert (model.codebook_size, model.num_codebooks, model.latent_dim) == (117649, 1, 12)
    assert model.bitrate == pytest.approx(5989.0, abs=0.1)
    big = OFFICIAL_CONFIGS["24kbps_24khz"]
    assert (big.sample_rate, big.hop_length, big.codebook_size) == (24000, 18, 250047)
    assert big.bitrate == pytest.approx(23909.1, abs=0.1)
    assert OFFICIAL_CONFIGS["0k75bps"].frame_rate == pytest.approx(44.444, abs=1e-3)


@pytest.mark.parametrize("n", [45, 46, 179, 181, 1000])
def test_lengths_are_exact(tiny6, tone, n):
    wave = torch.from_numpy(tone(n))
    codes = tiny6.encode_codes(wave)
    assert codes.shape == (math.ceil(n / 45), 1) == (tiny6.num_latent_frames(n), 1)
    assert tiny6.decode(codes).shape == (codes.shape[0] * 45,)
    assert tiny6.reconstruct(wave).shape == (n,)


def test_decode_from_codes_equals_decode_from_embeddings(tiny6, tone):
    wave = torch.from_numpy(tone(900))
    assert torch.equal(tiny6.decode(tiny6.encode_codes(wave)), tiny6.decode(tiny6.encode(wave)))


def test_mixed_length_batch_equals_one_by_one(tiny6, tone):
    waves = [torch.from_numpy(tone(n, seed=n)) for n in (700, 333, 1024)]
    batch = torch.zeros(3, 1024)
    mask = torch.zeros(3, 1024, dtype=torch.bool)
    for i, w in enumerate(waves):
        batch[i, : len(w)], mask[i, : len(w)] = w, True
    codes = tiny6.encode_codes(batch, attention_mask=mask)
    latents = tiny6.encode(batch, attention_mask=mask)
    for i, w in enumerate(waves):
        own = tiny6.encode_codes(w)
        assert torch.equal(codes[i, : own.shape[0]], own)
        assert not codes[i, own.shape[0] :].any()
        assert torch.equal(latents[i, : own.shape[0]], tiny6.encode(w))
    assert [r.shape[0] for r in tiny6.reconstruct(waves)] == [700, 333, 1024]
    listed = tiny6.decode(tiny6.encode_codes(waves))
    assert torch.equal(listed[1], tiny6.decode(tiny6.encode_codes(waves[1])))


@pytest.mark.parametrize("name", ["6kbps", "0k75bps"])
def test_chunked_encode_equals_one_pass(name, tone):
    model = load_tiny(name)
    n = 41 * model.hop_samples + 7  # 42 frames: chunks of 12 frames, the later ones cut left
    wave = torch.from_numpy(tone(n, seed=5))
    steps = []
    chunked = model.encode(wave, chunk_frames=12, progress=steps.append)
    torch.testing.assert_close(chunked, model.encode(wave, chunk_frames=None), rtol=0, atol=1e-5)
    assert steps[-1] == 1.0 and len(steps) > 2
    one = model.codes_waves([wave], chunk_frames=None)[0]
    assert torch.equal(model.codes_waves([wave], chunk_frames=12)[0], one)


@pytest.mark.parametrize("name", ["6kbps", "0k75bps"])
def test_chunked_decode_equals_one_pass(name):
    """In float64, where the random decoder's amplification of float32 rounding (~1e-5)
    disappears (what remains, ~1e-7, is GRN's clip-wide g / (g + eps), which float32 rounds to
    1): a chunk missing context would show errors of ~0.1."""
    model = load_tiny(name)
    codes = torch.randint(
        0, model.codebook_size, (1, 72, 1), generator=torch.Generator().manual_seed(3)
    )
    net = model.model.double()
    with torch.no_grad():
        z = net.quantizer.embed(codes[..., 0])
        audio = net.decode_features(z)
        torch.testing.assert_close(decode_chunked(net, z, 16, None), audio, rtol=0, atol=1e-6)


def test_chunked_decode_through_the_interface(tiny6):
    codes = torch.randint(
        0, tiny6.codebook_size, (40, 1), generator=torch.Generator().manual_seed(4)
    )
    one = tiny6.decode(codes, chunk_frames=None)
    steps = []
    chunked = tiny6.decode(codes, chunk_frames=16, progress=steps.append)
    assert chunked.shape == one.shape == (40 * 45,) and steps[-1] == 1.0
    assert (chunked - one).abs().max() < 1e-3 * one.abs().max()


def test_bad_inputs_raise_one_clear_error(tiny6):
    with pytest.raises(AudioInputError, match="too short"):
        tiny6.encode(torch.zeros(44))
    nan = torch.zeros(500)
    nan[7] = float("nan")
    with pytest.raises(AudioInputError, match="NaN"):
        tiny6.encode_codes(nan)
    with pytest.raises(ValueError, match="codes 0..117648"):
        tiny6.decode(torch.full((5, 1), 117649))
    with pytest.raises(ValueError, match="expected"):
        tiny6.decode(torch.zeros(5, 2, dtype=torch.long))


def test_other_input_rates_are_resampled(tiny6, tone):
    wave = torch.from_numpy(tone(1000, 8000))
    assert tiny6.encode_codes(wave, sample_rate=8000).shape == (math.ceil(2000 / 45), 1)
    assert tiny6.reconstruct(wave, sample_rate=8000).shape == (1000,)


def test_fsq_indices_and_codes_are_inverse():
    fsq = FSQ((9, 9, 9, 7, 7, 7), dim=6).eval()
    indices = torch.tensor([0, 1, 9, 12345, 250046])
    codes = fsq.indices_to_codes(indices)
    assert codes.abs().max() <= 1 and torch.equal(fsq.codes_to_indices(codes), indices)
    z = torch.randn(2, 50, 6) * 3
    _, idx, normalized = fsq(z)
    assert torch.equal(fsq.indices_to_codes(idx), normalized)


def test_training_path_substitutes_noise_and_has_gradients(tiny6, tone):
    model = load_tiny("6kbps").model.train()
    wave = torch.from_numpy(tone(400))[None].repeat(2, 1)
    audio, codes, aux = model(wave)
    assert audio.shape == (2, 400) and codes.shape == (2, 12)
    level_units = aux["fsq"] * 3
    assert not torch.equal(level_units, level_units.round())  # some values kept unrounded
    audio.pow(2).mean().backward()
    assert model.encoder.blocks[0].conv_2.parametrizations.weight.original1.grad is not None
    model.quantizer.noise_substitution = False
    _, _, aux = model(wave)
    assert torch.equal(aux["fsq"] * 3, (aux["fsq"] * 3).round())


def test_attention_in_groups_of_blocks_equals_all_at_once(monkeypatch):
    from sonotok.tokenizer.sqcodec import attention

    torch.manual_seed(0)
    layer = attention.LocalTransformer(24, 2, 4).eval()
    x = torch.randn(2, 101, 24)
    with torch.no_grad():
        whole = layer(x)
        monkeypatch.setattr(attention, "GROUP_FRAMES", 8)  # 2 blocks at a time
        assert torch.equal(layer(x), whole)
