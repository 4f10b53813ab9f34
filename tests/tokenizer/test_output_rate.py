"""A tokenizer whose decoder writes at another rate than it reads (`output_sample_rate`, as
NeuCodec's 16 kHz in / 24 kHz out): the toy `toy-upsampled` family (8 kHz in, 16 kHz out)
through `decode`, `reconstruct` and the command line's encode / decode / reconstruct."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.core.audio import resample
from sonotok.tokenizer.interface import load_tokenizer

from .toy import UpsampledTokenizer  # registers the "toy-upsampled" family

RATE, OUT_RATE, HOP = 8000, 16000, 160


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("upsampled") / "model"
    UpsampledTokenizer(seed=2).save_pretrained(out)
    return str(out)


def _sine(n: int, rate: int, hz: float = 440.0) -> np.ndarray:
    return (0.4 * np.sin(2 * np.pi * hz * np.arange(n) / rate)).astype(np.float32)


def test_facts_and_decode_are_at_the_output_rate(folder):
    tokenizer = load_tokenizer(folder)
    assert (tokenizer.sample_rate, tokenizer.output_sample_rate) == (RATE, OUT_RATE)
    assert (tokenizer.hop_samples, tokenizer.output_hop_samples) == (HOP, 2 * HOP)
    facts = tokenizer.describe()
    assert (facts["sample_rate"], facts["output_sample_rate"]) == (RATE, OUT_RATE)

    wave = torch.from_numpy(_sine(1000, RATE))
    latents = tokenizer.encode(wave)
    assert tuple(latents.shape) == (6, HOP)
    decoded = tokenizer.decode(latents)
    assert tuple(decoded.shape) == (6 * 2 * HOP,)
    expected = resample(wave[: 6 * HOP].numpy(), RATE, OUT_RATE)  # the toy inverts exactly
    assert np.allclose(decoded.numpy(), expected, atol=1e-5)
    assert tuple(tokenizer.decode(latents[None].expand(3, -1, -1)).shape) == (3, 6 * 2 * HOP)


def test_reconstruct_restores_the_input_rate_and_length(folder):
    tokenizer = load_tokenizer(folder)
    wave = _sine(1000, RATE)
    rebuilt = tokenizer.reconstruct(torch.from_numpy(wave))
    assert tuple(rebuilt.shape) == (1000,)  # 960 decoded samples, then zero-padded
    assert np.abs(rebuilt.numpy()[100:900] - wave[100:900]).max() < 1e-3
    assert rebuilt[960:].abs().max() == 0
    at_22k = tokenizer.reconstruct(torch.from_numpy(_sine(2205, 22050)), sample_rate=22050)
    assert tuple(at_22k.shape) == (2205,)
    assert np.abs(at_22k.numpy()[200:1900] - _sine(2205, 22050)[200:1900]).max() < 1e-2
    batch = tokenizer.reconstruct(torch.from_numpy(np.stack([wave, wave])))
    assert tuple(batch.shape) == (2, 1000) and torch.allclose(batch[1], rebuilt, atol=1e-6)


def test_cli_decode_and_reconstruct_write_the_original_rate(folder, tmp_path):
    from sonotok.cli import main
    from sonotok.core.latents import LatentFile

    src = tmp_path / "in" / "a.wav"
    src.parent.mkdir()
    wave = _sine(11025, 22050, hz=300.0)  # 0.5 s at 22.05 kHz: 4000 samples at 8 kHz, 25 frames
    sf.write(src, wave, 22050, subtype="FLOAT")
    assert main(["encode", str(src), "-o", str(tmp_path / "lat"), "--model", folder]) == 0
    latent = LatentFile.load(tmp_path / "lat" / "a.safetensors")
    assert latent.latent_sample_rate == RATE and latent.sample_rate == 22050
    assert latent.latents.shape == (25, HOP)

    for command, source in (("decode", tmp_path / "lat"), ("reconstruct", src.parent)):
        out = tmp_path / command
        assert main([command, str(source), "-o", str(out), "--model", folder]) == 0
        audio, rate = sf.read(out / "a.wav", dtype="float32")
        assert rate == 22050 and audio.shape == (11025,), command
        assert np.abs(audio[500:10500] - wave[500:10500]).max() < 1e-2, command

    out = tmp_path / "native"
    argv = ["decode", str(tmp_path / "lat"), "-o", str(out), "--model", folder]
    assert main([*argv, "--sample-rate", str(OUT_RATE)]) == 0
    audio, rate = sf.read(out / "a.wav", dtype="float32")
    assert rate == OUT_RATE and audio.shape == (25 * 2 * HOP,)
