"""The family's decode glue: options reach the windowed decoder, lengths are exact.

The diffusion decoder itself (and its parity) is tested by the decoder side
(test_decoder*.py); it takes minutes at the official window geometry on a CPU, so here
`windows.decode_features` is replaced by a recorder that returns a ramp of the right length."""

import pytest
import torch

from sonotok.tokenizer.semanticodec import windows


@pytest.fixture()
def recorded(monkeypatch, codec):
    calls = []

    def fake_decode(decoder, features, token_rate, steps, guidance, **options):
        calls.append(dict(features=features, token_rate=token_rate, steps=steps,
                          guidance=guidance, **options))  # fmt: skip
        samples = features.shape[1] * 320 * (100 // token_rate) + 7  # the caller trims
        return torch.arange(samples, dtype=torch.float32).expand(features.shape[0], -1)

    monkeypatch.setattr(windows, "decode_features", fake_decode)
    monkeypatch.setattr(codec, "decoder", torch.nn.Identity())
    return calls


def test_decode_passes_load_and_call_options(codec, recorded, wave):
    codes = codec.encode_codes(wave)
    audio = codec.decode(codes)
    assert audio.shape == (len(codes) * codec.hop_samples,)
    call = recorded[-1]
    assert (call["steps"], call["guidance"], call["sampler"]) == (50, 2.0, "ddim")
    assert torch.equal(call["features"][0], codec.embed_codes(codes[None])[0])
    generator = torch.Generator()
    codec.decode(codes, steps=10, sampler="dpm++", guidance=1.0, generator=generator)
    call = recorded[-1]
    assert (call["steps"], call["guidance"], call["sampler"]) == (10, 1.0, "dpm++")
    assert call["generator"] is generator and call["token_rate"] == 100


def test_reconstruct_restores_input_length_and_rate(codec, recorded, wave):
    assert codec.reconstruct(wave).shape == wave.shape
    at_8k = wave[::2].contiguous()
    assert codec.reconstruct(at_8k, sample_rate=8000).shape == at_8k.shape
    batch = torch.stack([wave, wave])
    assert codec.reconstruct(batch).shape == batch.shape
