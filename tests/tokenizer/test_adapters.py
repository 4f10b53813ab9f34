"""The adapters around transformers' codecs (EnCodec, DAC, Mimi) and diffusers' Stable Audio VAE
(AutoencoderOobleck): tiny random models built locally, saved in the library's own format,
loaded by `load_tokenizer` and checked against the library model called directly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.core.errors import ConfigError
from sonotok.tokenizer.adapters import (
    DacTokenizer,
    EncodecTokenizer,
    MimiTokenizer,
    OobleckTokenizer,
    WavTokenizerTokenizer,
    XcodecTokenizer,
)
from sonotok.tokenizer.interface import load_tokenizer, tokenizer_types

RATE = 8000


def _random_codebooks(model: torch.nn.Module) -> torch.nn.Module:
    """Random init leaves some codebooks at zero (every code 0); spread them so codes vary."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if "embed" in name:
                buffer.normal_()
        for name, param in model.named_parameters():
            if "codebook" in name:
                param.normal_()
    return model


def _encodec():
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(
        num_filters=4, hidden_size=16, codebook_size=16, upsampling_ratios=[4, 2],
        num_lstm_layers=1, sampling_rate=RATE, target_bandwidths=[4.0, 12.0],
    )  # fmt: skip
    return _random_codebooks(EncodecModel(config))


def _dac():
    from transformers import DacConfig, DacModel

    config = DacConfig(
        encoder_hidden_size=4, downsampling_ratios=[2, 4], decoder_hidden_size=16, n_codebooks=3,
        codebook_size=16, codebook_dim=4, hidden_size=16, sampling_rate=RATE,
    )  # fmt: skip
    return _random_codebooks(DacModel(config))


def _mimi():
    from transformers import MimiConfig, MimiModel

    config = MimiConfig(
        hidden_size=16, num_filters=4, upsampling_ratios=[4, 2], codebook_size=16, codebook_dim=8,
        num_quantizers=3, vector_quantization_hidden_dimension=8, upsample_groups=4,
        num_hidden_layers=1, intermediate_size=16, num_attention_heads=2, num_key_value_heads=2,
        sampling_rate=RATE,
    )  # fmt: skip
    return _random_codebooks(MimiModel(config))


def _xcodec():
    """A DAC acoustic branch and a one-layer HuBERT semantic branch, both hop 8; the HuBERT's
    receptive field (10) exceeds its hop, as the real one's (400 > 320) does, so a clip of T
    hops gives T frames from both branches."""
    from transformers import XcodecConfig, XcodecModel

    acoustic = dict(
        model_type="dac", encoder_hidden_size=4, downsampling_ratios=[2, 4],
        upsampling_ratios=[4, 2], decoder_hidden_size=16, hidden_size=8,
    )  # fmt: skip
    semantic = dict(
        model_type="hubert", hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, conv_dim=(4, 4), conv_stride=(2, 4), conv_kernel=(4, 4),
        num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    config = XcodecConfig(
        sample_rate=RATE, target_bandwidths=[4.0, 12.0], codebook_size=16,
        acoustic_model_config=acoustic, semantic_model_config=semantic,
    )  # fmt: skip
    return _random_codebooks(XcodecModel(config))


def _wavtokenizer():
    from transformers import WavTokenizerConfig, WavTokenizerModel

    config = WavTokenizerConfig(
        sampling_rate=RATE, num_filters=4, upsampling_ratios=[4, 2], num_lstm_layers=1,
        hidden_size=8, codebook_size=16, codebook_dim=8, decoder_hidden_size=8,
        decoder_intermediate_size=16, decoder_num_layers=1, decoder_attention_num_groups=2,
    )  # fmt: skip
    torch.manual_seed(1)
    model = WavTokenizerModel(config)
    with torch.no_grad():  # codebook = encoder frames of noise (as a k-means init), so codes vary
        frames = model.encoder_model.encoder(torch.randn(1, 1, 16 * 8))[0].T
        model.encoder_model.quantizer.codebook.embed.copy_(frames)
    return model


def _oobleck():
    from diffusers import AutoencoderOobleck

    torch.manual_seed(0)
    return AutoencoderOobleck(
        encoder_hidden_size=12, downsampling_ratios=[2, 4], channel_multiples=[1, 2],
        decoder_channels=4, decoder_input_channels=6, audio_channels=2, sampling_rate=RATE,
    )  # fmt: skip


# build, adapter class, hop, frame count per hop, K, codebook size, D
CODECS = {
    "encodec": (_encodec, EncodecTokenizer, 8, 3, 16, 16),
    "dac": (_dac, DacTokenizer, 8, 3, 16, 16),
    "mimi": (_mimi, MimiTokenizer, 16, 3, 16, 16),
    "xcodec": (_xcodec, XcodecTokenizer, 8, 3, 16, 16),
    "wavtokenizer": (_wavtokenizer, WavTokenizerTokenizer, 8, 1, 16, 8),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """Each tiny model saved by its own library's save_pretrained."""
    out = {}
    for name, build in [*((n, c[0]) for n, c in CODECS.items()), ("oobleck", _oobleck)]:
        folder = tmp_path_factory.mktemp(name)
        build().save_pretrained(str(folder))
        out[name] = str(folder)
    return out


def test_adapters_are_registered_without_importing_the_libraries():
    types = tokenizer_types()
    assert types["encodec"] is EncodecTokenizer and types["dac"] is DacTokenizer
    assert types["mimi"] is MimiTokenizer and types["AutoencoderOobleck"] is OobleckTokenizer
    assert types["xcodec"] is XcodecTokenizer and types["wavtokenizer"] is WavTokenizerTokenizer
    import subprocess
    import sys

    code = (
        "import sys, sonotok.tokenizer.interface as i; i.tokenizer_types(); "
        "print(any(m in sys.modules for m in ('transformers', 'diffusers')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("name", list(CODECS))
def test_codec_loads_encodes_and_decodes_with_exact_lengths(name, folders, tone):
    _, cls, hop, k, size, dim = CODECS[name]
    tokenizer = load_tokenizer(folders[name])
    assert type(tokenizer) is cls and tokenizer.sample_rate == RATE
    assert tokenizer.hop_samples == hop and tokenizer.frame_rate == RATE / hop
    assert (tokenizer.num_codebooks, tokenizer.codebook_size, tokenizer.latent_dim) == (
        k,
        size,
        dim,
    )
    assert tokenizer.bitrate == pytest.approx(RATE / hop * k * math.log2(size))
    facts = tokenizer.describe()
    assert (
        facts["model_type"] == name and facts["discrete"] and facts["bitrate"] == tokenizer.bitrate
    )
    assert facts["parameters"] == sum(p.numel() for p in tokenizer.model.parameters()) > 0

    wave = torch.from_numpy(tone(1003, RATE))
    frames = math.ceil(1003 / hop)
    latents = tokenizer.encode(wave)
    assert latents.dtype == torch.float32 and tuple(latents.shape) == (frames, dim)
    assert tuple(tokenizer.decode(latents).shape) == (frames * hop,)
    assert tuple(tokenizer.reconstruct(wave).shape) == (1003,)
    batch = tokenizer.encode(torch.stack([wave, wave]))
    assert tuple(batch.shape) == (2, frames, dim) and torch.allclose(batch[1], latents, atol=1e-5)

    codes = tokenizer.encode_codes(wave)
    assert codes.dtype == torch.int64 and tuple(codes.shape) == (frames, k)
    assert 0 <= codes.min() and codes.max() < size and len(codes.unique()) > 1
    assert torch.allclose(tokenizer.embed_codes(codes[None])[0], latents, atol=1e-5)
    from_codes, from_latents = tokenizer.decode(codes), tokenizer.decode(latents)
    assert from_codes.abs().max() > 0 and torch.allclose(from_codes, from_latents, atol=1e-5)


def _library_codes_and_audio(name: str, model, x: torch.Tensor):
    """The library's own encode/decode on (1, 1, N): codes (K, T) and audio (N',)."""
    if name == "encodec":
        out = model.encode(x, bandwidth=12.0)
        audio = model.decode(out.audio_codes, out.audio_scales).audio_values
        return out.audio_codes[0, 0], audio.reshape(-1)
    if name == "dac":
        out = model.encode(x)
        return out.audio_codes[0], model.decode(out.quantized_representation).audio_values[0]
    codes = model.encode(x).audio_codes
    return codes[0], model.decode(codes).audio_values.reshape(-1)


@pytest.mark.parametrize("name", list(CODECS))
def test_codec_matches_the_library_model_called_directly(name, folders, tone):
    tokenizer = load_tokenizer(folders[name])
    n = 128 * tokenizer.hop_samples  # a whole number of hops: no padding on either side
    wave = torch.from_numpy(tone(n, RATE, seed=3))
    with torch.no_grad():
        codes, audio = _library_codes_and_audio(name, tokenizer.model, wave.view(1, 1, -1))
    assert torch.equal(tokenizer.encode_codes(wave), codes.T)
    decoded = tokenizer.decode(tokenizer.encode(wave))
    assert torch.allclose(decoded, audio[:n], atol=1e-5)


def test_codebook_options_change_the_codes_and_bitrate(folders, tone):
    low = load_tokenizer(folders["encodec"], bandwidth=4.0)
    assert low.num_codebooks == 1 and low.bitrate == 4000.0
    wave = torch.from_numpy(tone(800, RATE))
    full = load_tokenizer(folders["encodec"]).encode_codes(wave)
    assert torch.equal(low.encode_codes(wave)[:, 0], full[:, 0])  # residual VQ: a prefix
    assert load_tokenizer(folders["dac"], num_quantizers=2).encode_codes(wave).shape == (100, 2)
    with pytest.raises(ConfigError, match="bandwidth=5.0"):
        load_tokenizer(folders["encodec"], bandwidth=5.0)
    with pytest.raises(ConfigError, match="num_quantizers=4"):
        load_tokenizer(folders["mimi"], num_quantizers=4)


def test_xcodec_bandwidth_picks_a_prefix_of_the_codebooks(folders, tone):
    low = load_tokenizer(folders["xcodec"], bandwidth=4.0)
    assert low.num_codebooks == 1 and low.bitrate == 4000.0
    wave = torch.from_numpy(tone(800, RATE))
    full = load_tokenizer(folders["xcodec"]).encode_codes(wave)
    assert full.shape == (100, 3) and torch.equal(low.encode_codes(wave)[:, 0], full[:, 0])
    with pytest.raises(ConfigError, match="bandwidth=8.0"):
        load_tokenizer(folders["xcodec"], bandwidth=8.0)


def test_oobleck_vae_is_a_continuous_tokenizer_equal_to_diffusers(folders, tone):
    config = json.loads((Path(folders["oobleck"]) / "config.json").read_text())
    assert config["_class_name"] == "AutoencoderOobleck" and "model_type" not in config
    tokenizer = load_tokenizer(folders["oobleck"])
    assert type(tokenizer) is OobleckTokenizer and not tokenizer.is_discrete
    assert (tokenizer.sample_rate, tokenizer.hop_samples, tokenizer.latent_dim) == (RATE, 8, 6)
    assert tokenizer.describe()["bitrate"] is None and tokenizer.latent_values_per_second == 6000
    with pytest.raises(ConfigError, match="continuous"):
        tokenizer.encode_codes(torch.zeros(800))

    wave = torch.from_numpy(tone(800, RATE, seed=4))
    latents = tokenizer.encode(wave)
    stereo = wave.view(1, 1, -1).expand(1, 2, -1)
    with torch.no_grad():
        mean = tokenizer.model.encode(stereo).latent_dist.mean
        audio = tokenizer.model.decode(mean).sample.mean(1)[0]
    assert torch.allclose(latents, mean[0].T, atol=1e-6)
    assert torch.allclose(tokenizer.decode(latents), audio[:800], atol=1e-6)
    odd = torch.from_numpy(tone(803, RATE))
    assert tuple(tokenizer.encode(odd).shape) == (101, 6)
    assert tuple(tokenizer.reconstruct(odd).shape) == (803,)


def test_cli_reconstructs_with_an_adapter(folders, tone, tmp_path):
    from sonotok.cli import main

    src = tmp_path / "in" / "a.wav"
    src.parent.mkdir()
    sf.write(src, tone(1003, RATE), RATE, subtype="FLOAT")
    out = tmp_path / "out"
    assert main(["reconstruct", str(src.parent), "-o", str(out), "--model", folders["dac"]]) == 0
    audio, rate = sf.read(out / "a.wav", dtype="float32")
    assert rate == RATE and audio.shape == (1003,) and np.abs(audio).max() > 0


def test_missing_folder_is_a_model_not_found_error(tmp_path):
    from sonotok.core.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="cannot load a EncodecModel"):
        EncodecTokenizer.from_pretrained(tmp_path / "none", local_files_only=True)
