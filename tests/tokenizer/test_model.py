import copy

import pytest
import torch

from sonotok.tokenizer import (
    AudioInputError,
    AudioTokenizer,
    ConfigError,
    TokenizerConfig,
    num_latent_frames,
)


@pytest.fixture(scope="module")
def wave(tone):
    return lambda n, seed=0: torch.from_numpy(tone(n, seed=seed))


@pytest.mark.parametrize(
    "n,frames,out",
    [(16000, 25, 16000), (16001, 25, 16000), (161280, 252, 161280), (200000, 312, 199680)],
)
def test_length_table(tiny_tokenizer, n, frames, out, wave):
    z = tiny_tokenizer.encode(wave(n))
    assert z.shape == (frames, 32) == (num_latent_frames(n), 32)
    assert tiny_tokenizer.decode(z).shape == (out,)


def test_batch_invariance_list_and_padded_batch(tiny_tokenizer, wave):
    lengths = [16000, 40000, 24321, 170000]  # the last spans two 10.08 s chunks
    waves = [wave(n, seed=i) for i, n in enumerate(lengths)]
    alone = [tiny_tokenizer.encode(w) for w in waves]
    listed = tiny_tokenizer.encode(waves)
    padded = torch.zeros(len(waves), max(lengths))
    mask = torch.zeros_like(padded, dtype=torch.long)
    for i, w in enumerate(waves):
        padded[i, : len(w)] = w
        mask[i, : len(w)] = 1
    batch = tiny_tokenizer.encode(padded, attention_mask=mask)
    assert batch.shape == (4, num_latent_frames(max(lengths)), 32)
    for i, z in enumerate(alone):
        assert torch.allclose(listed[i], z, atol=1e-5)
        assert torch.allclose(batch[i, : len(z)], z, atol=1e-5)
        assert batch[i, len(z) :].abs().sum() == 0  # padded frames are zero


def test_loud_batch_mate_does_not_change_quiet_clip(tiny_tokenizer, wave):
    quiet = 1e-4 * wave(16000, seed=1)
    loud = 0.9 * torch.sign(wave(16000, seed=2))
    assert torch.allclose(
        tiny_tokenizer.encode([quiet, loud])[0], tiny_tokenizer.encode(quiet), atol=1e-5
    )


def test_fused_is_semantic_plus_acoustic(tiny_tokenizer, wave):
    x = wave(50000)
    fused = tiny_tokenizer.encode(x)
    parts = tiny_tokenizer.encode(x, features="semantic") + tiny_tokenizer.encode(
        x, features="acoustic"
    )
    assert torch.allclose(fused, parts, atol=1e-5)
    with pytest.raises(ValueError, match="features"):
        tiny_tokenizer.encode(x, features="both")


def test_long_audio_in_pieces_equals_one_pass(tiny_tokenizer, wave):
    x = wave(16000 * 45)  # 4.5 semantic chunks
    one = tiny_tokenizer.encode(x, chunks_per_pass=64)
    pieces = tiny_tokenizer.encode(x, chunks_per_pass=1)
    assert torch.allclose(one, pieces, atol=1e-5)


def test_chunked_decode_equals_full_decode(tiny_tokenizer, wave):
    z = tiny_tokenizer.encode(wave(16000 * 12))
    full = tiny_tokenizer.decode(z, chunk_frames=None)
    for chunk in (7, 50, 299):
        assert torch.allclose(tiny_tokenizer.decode(z, chunk_frames=chunk), full, atol=1e-4)


def test_chunked_decode_equals_full_decode_at_full_depth():
    torch.manual_seed(0)
    model = AudioTokenizer(TokenizerConfig.tiny())
    from sonotok.tokenizer.decoder import VocosDecoder, VocosDecoderConfig

    model.decoder = VocosDecoder(
        VocosDecoderConfig(input_dim=32, dim=32, intermediate_dim=64, num_layers=12)
    )
    model.config.decoder = model.decoder.config
    for block in model.decoder.backbone.convnext:
        block.gamma.data.fill_(1.0)  # make every block matter
    z = torch.randn(1, 200, 32)
    full = model.decode(z, chunk_frames=None)
    assert torch.allclose(model.decode(z, chunk_frames=40), full, atol=1e-4)


def test_reconstruct_keeps_rate_and_length(tiny_tokenizer, wave, tone):
    x = torch.from_numpy(tone(22050 + 17, sample_rate=22050))
    y = tiny_tokenizer.reconstruct(x, sample_rate=22050)
    assert y.shape == x.shape and torch.isfinite(y).all()
    ys = tiny_tokenizer.reconstruct([wave(16000), wave(20000)])
    assert [len(v) for v in ys] == [16000, 20000]


def test_encode_resamples(tiny_tokenizer, tone):
    x48 = torch.from_numpy(tone(48000, sample_rate=48000))
    assert tiny_tokenizer.encode(x48, sample_rate=48000).shape == (25, 32)


def test_bad_inputs(tiny_tokenizer):
    with pytest.raises(AudioInputError, match="too short"):
        tiny_tokenizer.encode(torch.zeros(100))
    with pytest.raises(AudioInputError, match="NaN"):
        tiny_tokenizer.encode(torch.full((16000,), float("nan")))
    with pytest.raises(AudioInputError, match="input 1.*empty"):
        tiny_tokenizer.encode([torch.zeros(16000), torch.zeros(0)])
    with pytest.raises(AudioInputError, match="shape"):
        tiny_tokenizer.encode(torch.zeros(2, 2, 16000))
    with pytest.raises(AudioInputError, match="attention_mask"):
        tiny_tokenizer.encode(torch.zeros(2, 16000), attention_mask=torch.ones(2, 100))
    with pytest.raises(ValueError, match="expected"):
        tiny_tokenizer.decode(torch.zeros(10, 7))
    with pytest.raises(ValueError, match="NaN"):
        tiny_tokenizer.decode(torch.full((10, 32), float("nan")))


def test_bf16_compute_stays_close(tiny_tokenizer, wave):
    low = copy.deepcopy(tiny_tokenizer).set_compute_dtype("bf16")
    assert low.semantic.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert low.acoustic.patch_embed.weight.dtype == torch.float32  # front ends stay fp32
    assert low.decoder.head.out.weight.dtype == torch.float32
    x = wave(32000)
    ref_z, low_z = tiny_tokenizer.encode(x), low.encode(x)
    ref_y, low_y = tiny_tokenizer.decode(ref_z), low.decode(ref_z)
    assert low_z.dtype == torch.float32 and low_y.dtype == torch.float32
    assert (low_z - ref_z).abs().max() < 0.05 * ref_z.abs().max()
    assert (low_y - ref_y).abs().max() < 0.05 * ref_y.abs().max()
    assert (low_z - ref_z).abs().max() > 0  # it really ran in lower precision
    with pytest.raises(ValueError, match="not supported"):
        low.set_compute_dtype("int8")


def test_config_validation():
    cfg = TokenizerConfig.tiny().to_dict()
    cfg["acoustic"]["embed_dim"] = 16
    with pytest.raises(ConfigError, match="latent widths differ"):
        TokenizerConfig.from_dict(cfg)
    cfg = TokenizerConfig.tiny().to_dict()
    cfg["upsample"] = 4
    with pytest.raises(ConfigError, match="samples per latent frame"):
        TokenizerConfig.from_dict(cfg)
    cfg = TokenizerConfig.tiny().to_dict()
    cfg["decoder"]["depth"] = 3
    with pytest.raises(ConfigError, match="unknown config key decoder.depth"):
        TokenizerConfig.from_dict(cfg)
    assert TokenizerConfig.from_dict(TokenizerConfig.tiny().to_dict()) == TokenizerConfig.tiny()


def test_full_size_has_paper_parameter_counts():
    with torch.device("meta"):
        model = AudioTokenizer()
    count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    assert round(count(model.semantic), 1) == 630.3
    assert round(count(model.acoustic), 2) == 0.66
    assert round(count(model.upsampler) + count(model.decoder), 1) == 173.9
    assert (
        len(model.state_dict()) == 522 - 5
    )  # official file also stores 5 derived front-end/ISTFT tables


def test_decoder_gradients_are_finite(tiny_tokenizer):
    """The ISTFT divides by the window envelope only after trimming its zero edges."""
    z = torch.randn(1, 6, 32, requires_grad=True)
    audio = tiny_tokenizer.synthesize(z, chunk_frames=None)
    audio.square().sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_progress_reports_fractions_of_long_encodes_and_decodes(tiny_tokenizer, tone):
    wave = torch.from_numpy(tone(16000 * 25))  # 25 s: several 10.08 s chunks
    seen: list[float] = []
    z = tiny_tokenizer.encode(wave, chunks_per_pass=1, progress=seen.append)
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=0.02)
    torch.testing.assert_close(z, tiny_tokenizer.encode(wave), atol=1e-5, rtol=1e-5)
    done: list[float] = []
    audio = tiny_tokenizer.decode(z, chunk_frames=200, progress=done.append)
    assert len(done) == 4 and done[-1] == 1.0
    torch.testing.assert_close(
        audio, tiny_tokenizer.decode(z, chunk_frames=None), atol=1e-5, rtol=0
    )
