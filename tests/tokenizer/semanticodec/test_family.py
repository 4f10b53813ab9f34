"""The SemantiCodec family on the Tokenizer interface: facts, shapes, batching, errors, names."""

import math

import pytest
import torch

from sonotok.core.errors import AudioInputError, ConfigError
from sonotok.tokenizer.interface import load_tokenizer
from sonotok.tokenizer.semanticodec import SemantiCodec, family
from sonotok.tokenizer.semanticodec.family import parse_official_name

# the README's bitrates of the twelve released configurations (kbps)
README_KBPS = {
    (100, 32768): 1.40, (50, 32768): 0.70, (25, 32768): 0.35,
    (100, 16384): 1.35, (50, 16384): 0.68, (25, 16384): 0.34,
    (100, 8192): 1.30, (50, 8192): 0.65, (25, 8192): 0.33,
    (100, 4096): 1.25, (50, 4096): 0.63, (25, 4096): 0.31,
}  # fmt: skip


@pytest.mark.parametrize("rate, vocab", sorted(README_KBPS))
def test_bitrate_and_frame_rate_of_every_configuration(make_config, rate, vocab):
    with torch.device("meta"):
        codec = SemantiCodec(
            make_config(rate, semantic_vocab_size=vocab, acoustic_codebook_size=8192)
        )
    assert abs(codec.bitrate / 1000 - README_KBPS[rate, vocab]) <= 0.005 + 1e-9
    assert codec.frame_rate == rate / 2 and codec.hop_samples == 32000 // rate
    assert codec.num_codebooks == 2 and codec.codebook_size == 8192
    assert codec.latent_dim == 2 * 8 * (100 // rate)


def test_encode_shapes_and_lengths(codec, wave):
    codes = codec.encode_codes(wave)
    assert codes.shape == (codec.num_latent_frames(len(wave)), 2) == (40, 2)
    features = codec.encode(wave)
    assert features.shape == (40, 16)
    # features are [acoustic code vector, semantic centroid] of the codes
    assert torch.equal(features[:, 8:], codec.encoder.centroids[codes[:, 0]])
    assert torch.equal(features[:, :8], codec.encoder.acoustic_codebook[codes[:, 1]])
    assert torch.equal(codec.embed_codes(codes[None])[0], features)


def test_frames_are_the_references_and_cover_the_input(make_config):
    lengths = (400, 2559, 2560, 5000, 7680, 153600, 163840)
    # the reference's counts: whole 0.16 s columns plus one, except where its float
    # `d % 0.16` comes out just under 0.16 (7680 and 153600 samples: no extra column)
    expected = {100: [8, 8, 16, 16, 24, 480, 520], 25: [2, 2, 4, 4, 6, 120, 130]}
    for rate, counts in expected.items():
        with torch.device("meta"):
            codec = SemantiCodec(make_config(rate))
        assert [codec.num_latent_frames(n) for n in lengths] == counts
        for n in range(400, 400000, 997):
            assert codec.num_latent_frames(n) * codec.hop_samples >= n


def test_mixed_length_batch_equals_one_by_one(codec, wave):
    other = torch.flip(wave[:5000], [0]) * 0.5
    one_by_one = [codec.encode_codes(w) for w in (wave, other)]
    listed = codec.encode_codes([wave, other])
    assert all(torch.equal(a, b) for a, b in zip(one_by_one, listed))
    batch = torch.stack([wave, torch.nn.functional.pad(other, (0, len(wave) - len(other)))])
    mask = torch.zeros_like(batch)
    mask[0], mask[1, : len(other)] = 1, 1
    padded = codec.encode_codes(batch, attention_mask=mask)
    assert torch.equal(padded[0], one_by_one[0])
    assert torch.equal(padded[1, : len(one_by_one[1])], one_by_one[1])
    assert not padded[1, len(one_by_one[1]) :].any()


def test_segments_in_small_passes_equal_one_pass(codec):
    long = torch.sin(torch.arange(170000) * 0.01) * 0.2  # two 10.24 s segments
    seen = []
    one = codec.encode_codes(long)
    small = codec.encode(long, chunks_per_pass=1, progress=seen.append)
    assert torch.equal(codec.embed_codes(one[None])[0], small)
    assert seen == [0.5, 1.0]


def test_other_rates_resampled(codec, wave):
    import soxr

    at_8k = torch.from_numpy(soxr.resample(wave.numpy(), 16000, 8000))
    codes = codec.encode_codes(at_8k, sample_rate=8000)
    assert codes.shape[0] == codec.num_latent_frames(len(wave))


def test_bad_inputs_raise_named_errors(codec, wave):
    with pytest.raises(AudioInputError, match="too short"):
        codec.encode(wave[:399])
    bad = wave.clone()
    bad[7] = float("nan")
    with pytest.raises(AudioInputError, match="NaN"):
        codec.encode(bad)
    with pytest.raises(AudioInputError, match="samples, channels"):
        codec.encode(torch.stack([wave, wave], dim=1))
    with pytest.raises(ConfigError, match="semantic tokens must lie in"):
        codec.decode(torch.tensor([[24, 0]]))
    with pytest.raises(ConfigError, match="acoustic tokens must lie in"):
        codec.embed_codes(torch.tensor([[[0, -1]]]))
    with pytest.raises(ConfigError, match="chunks_per_pass"):
        codec.encode(wave, chunks_per_pass=0)


def test_bad_load_options_are_refused(make_config):
    with pytest.raises(ConfigError, match="dpm"):
        SemantiCodec(make_config(), sampler="euler")
    with pytest.raises(ConfigError, match="ddim_steps"):
        SemantiCodec(make_config(), ddim_steps=0)


def test_decode_without_decoder_says_how_to_load_one(codec, wave):
    with pytest.raises(ConfigError, match="without its decoder"):
        codec.decode(codec.encode_codes(wave))


def test_save_and_load_round_trip(codec, wave, tmp_path):
    codec.save_pretrained(tmp_path / "m")
    loaded = load_tokenizer(tmp_path / "m")
    assert isinstance(loaded, SemantiCodec) and loaded.config == codec.config
    assert torch.equal(loaded.encode_codes(wave), codec.encode_codes(wave))


def test_official_names_are_parsed(tmp_path):
    assert parse_official_name("haoheliu/SemantiCodec:50tps-8192") == (
        "haoheliu/SemantiCodec", 50, 8192,
    )  # fmt: skip
    assert parse_official_name("haoheliu/SemantiCodec") == ("haoheliu/SemantiCodec", 100, 16384)
    assert parse_official_name("semanticodec-25tps-32k") == ("haoheliu/SemantiCodec", 25, 32768)
    assert parse_official_name(f"{tmp_path}:100tps-4096") == (str(tmp_path), 100, 4096)
    for name in ("someone/else:100tps-4096", f"{tmp_path}/missing:100tps-4096", "C:\\x", "mimi"):
        assert parse_official_name(name) is None
    assert SemantiCodec.claims("semanticodec-100tps-16k")


def test_load_tokenizer_resolves_claimed_names_through_the_hub(monkeypatch, tmp_path, codec):
    """`load_tokenizer` hands claimed names to the family, which fetches only its files."""
    asked = {}

    def fake_resolve(name, allow_patterns=None, **hub):
        asked.update(name=name, patterns=allow_patterns, hub=hub)
        return tmp_path

    monkeypatch.setattr(family, "resolve", fake_resolve)
    built = {}
    monkeypatch.setattr(
        SemantiCodec, "from_official",
        classmethod(lambda cls, folder, rate, vocab, decoder, overrides, **o: built.update(
            folder=folder, rate=rate, vocab=vocab, decoder=decoder, options=o) or codec),
    )  # fmt: skip
    out = load_tokenizer("semanticodec-50tps-8k", decoder=False, ddim_steps=10, revision="main")
    assert out is codec
    assert asked["name"] == "haoheliu/SemantiCodec" and asked["hub"]["revision"] == "main"
    assert asked["patterns"] == [
        "semanticodec_tokenrate_50/encoder.ckpt",
        "codebook_idx/combine_256_audioset_dominate/codebook_4096_0.npy",
    ]
    assert built["rate"] == 50 and built["vocab"] == 8192 and built["decoder"] is False
    assert built["options"]["ddim_steps"] == 10


def test_all_silent_input_is_all_padding(codec):
    """The reference marks padding by constant fbank frames; silence is constant too."""
    codes = codec.encode_codes(torch.zeros(3000))
    assert codes.shape == (16, 2) and codes[:, 0].unique().numel() == 1
    assert math.isfinite(codec.encode(torch.zeros(3000)).sum().item())


def test_random_model_has_varied_tokens(make_codec):
    codec = make_codec(25, seed=3)
    codes = codec.encode_codes(torch.randn(40000) * 0.1)
    assert codes.shape == (32, 2) and codes[:, 0].unique().numel() > 3


def test_config_with_decoder_round_trips_through_json(make_config):
    import json

    from sonotok.tokenizer.semanticodec import SemantiCodecConfig
    from sonotok.tokenizer.semanticodec.decoder_config import DecoderConfig

    config = make_config(50, decoder=DecoderConfig.tiny(feature_dim=32))
    values = json.loads(json.dumps(config.to_dict()))
    assert SemantiCodecConfig.from_dict(values, "config.json") == config
    with pytest.raises(ConfigError, match="config.json: decoder"):
        SemantiCodecConfig.from_dict({**values, "decoder": {"bogus": 1}}, "config.json")


def test_training_features_equal_inference_and_train_the_acoustic_branch(codec, wave):
    from sonotok.tokenizer.semanticodec.encoder import segment_fbank

    padded = torch.nn.functional.pad(wave, (0, 163840 - len(wave)))
    fbank = segment_fbank(padded - padded.mean(), 0)[None]
    features, loss = codec.encoder.training_features(fbank)
    tokens = codec.encoder(fbank)
    assert torch.allclose(features, codec.encoder.token_to_quantized_feature(tokens), atol=1e-6)
    (features.sum() + loss).backward()
    encoder = codec.encoder
    assert encoder.lstm.weight_ih_l0.grad.abs().sum() > 0
    assert encoder.acoustic_codebook.grad.abs().sum() > 0
    assert encoder.audiomae.patch_embed.weight.grad is None
    codec.zero_grad(set_to_none=True)


def test_saved_folder_keeps_its_decode_options(make_codec, tmp_path):
    """A folder saved with a faster sampler decodes that way when loaded by name alone (the
    command line's --model); options given at load win; a damaged entry is refused."""
    import json

    model = make_codec()
    fast = SemantiCodec(model.config, ddim_steps=12, guidance=1.5, sampler="dpm++")
    fast.encoder.load_state_dict(model.encoder.state_dict())
    fast.save_pretrained(tmp_path / "fast")
    loaded = SemantiCodec.from_pretrained(tmp_path / "fast")
    assert loaded.decode_options == {"steps": 12, "guidance": 1.5, "sampler": "dpm++"}
    again = SemantiCodec.from_pretrained(tmp_path / "fast", ddim_steps=3)
    assert again.decode_options == {"steps": 3, "guidance": 1.5, "sampler": "dpm++"}
    config = tmp_path / "fast" / "config.json"
    values = json.loads(config.read_text())
    values["decode_options"] = {"steps": 3}
    config.write_text(json.dumps(values))
    with pytest.raises(ConfigError, match="decode_options"):
        SemantiCodec.from_pretrained(tmp_path / "fast")
