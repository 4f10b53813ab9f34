"""The X-Codec 2 and NeuCodec adapters (transformers `Xcodec2Model`, `NeuCodecModel`).

Tiny random models with a one-layer w2v-BERT (tests/tokenizer/xcodec2_tiny.py) are built
locally; the parity fixture (tests/fixtures/xcodec2_parity/, made by make_xcodec2_parity.py
where torchaudio is installed) holds the same models with the library's feature-extractor
outputs, codes and decoded audio, which the adapter must reproduce without torchaudio."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from sonotok.core.errors import AudioInputError
from sonotok.tokenizer.adapters import NeuCodecTokenizer, Xcodec2Tokenizer
from sonotok.tokenizer.interface import load_tokenizer, tokenizer_types

from . import xcodec2_tiny as tiny

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xcodec2_parity"

RATE, HOP = 16000, 320
# family → (adapter, output rate, frames for N samples)
FAMILIES = {
    "xcodec2": (Xcodec2Tokenizer, 16000, lambda n: n // HOP + 1),
    "neucodec": (NeuCodecTokenizer, 24000, lambda n: n // HOP),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """The tiny models built here and saved by the library's save_pretrained."""
    out = {}
    for name in FAMILIES:
        folder = tmp_path_factory.mktemp(name)
        getattr(tiny, name)().save_pretrained(str(folder))
        out[name] = str(folder)
    return out


@pytest.fixture(scope="module")
def cases() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURE / "cases.safetensors"))


def test_registered_and_import_stays_light():
    types = tokenizer_types()
    assert types["xcodec2"] is Xcodec2Tokenizer and types["neucodec"] is NeuCodecTokenizer
    code = (
        "import sys, sonotok.tokenizer as t; t.interface.tokenizer_types(); "
        "print('transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("clip", [0, 1])
def test_features_codes_and_audio_equal_the_library(name, clip, cases):
    """The library's feature extractor (torchaudio) → encode → decode, recorded in the fixture."""
    key = f"{name}.{clip}"
    tokenizer = load_tokenizer(FIXTURE / name)
    wave = cases[f"{key}.wave"]
    padded = torch.nn.functional.pad(wave, (0, tokenizer.padded_length(len(wave)) - len(wave)))
    features, mask = tokenizer.semantic_features(padded[None])
    assert torch.allclose(features[0], cases[f"{key}.input_features"], atol=1e-5)
    assert torch.equal(mask[0], cases[f"{key}.input_features_mask"])

    codes = tokenizer.encode_codes(wave)
    assert torch.equal(codes[:, 0], cases[f"{key}.codes"].long())
    audio = cases[f"{key}.audio"]
    assert torch.allclose(tokenizer.decode(codes), audio, atol=1e-6)  # audio peaks ≈ 0.02
    assert torch.allclose(tokenizer.decode(tokenizer.encode(wave)), audio, atol=1e-6)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_facts_bitrate_and_exact_lengths(name, folders, tone):
    cls, out_rate, frames_for = FAMILIES[name]
    tokenizer = load_tokenizer(folders[name])
    assert type(tokenizer) is cls and tokenizer.is_discrete
    assert (tokenizer.sample_rate, tokenizer.output_sample_rate) == (RATE, out_rate)
    assert (tokenizer.hop_samples, tokenizer.output_hop_samples) == (HOP, out_rate // 50)
    assert (tokenizer.frame_rate, tokenizer.num_codebooks, tokenizer.codebook_size) == (50, 1, 256)
    assert tokenizer.latent_dim == 80 and tokenizer.bitrate == 50 * math.log2(256) == 400
    facts = tokenizer.describe()
    assert facts["output_sample_rate"] == out_rate and facts["bitrate"] == 400
    assert facts["parameters"] == sum(p.numel() for p in tokenizer.model.parameters())

    for n in (HOP, 1003, 4 * HOP):
        wave = torch.from_numpy(tone(n, RATE, seed=n))
        frames = frames_for(n)
        assert tokenizer.num_latent_frames(n) == frames
        codes = tokenizer.encode_codes(wave)
        assert codes.dtype == torch.int64 and tuple(codes.shape) == (frames, 1)
        latents = tokenizer.encode(wave)
        assert tuple(latents.shape) == (frames, 80)
        assert torch.allclose(tokenizer.embed_codes(codes[None])[0], latents, atol=1e-6)
        decoded = tokenizer.decode(latents)
        assert tuple(decoded.shape) == (frames * tokenizer.output_hop_samples,)
        assert torch.allclose(tokenizer.decode(codes), decoded, atol=1e-5)
        assert tuple(tokenizer.reconstruct(wave).shape) == (n,)
    with pytest.raises(AudioInputError):
        tokenizer.encode(torch.zeros(HOP - 1))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_batches_equal_clips_encoded_alone(name, folders, tone):
    tokenizer = load_tokenizer(folders[name])
    waves = [torch.from_numpy(tone(n, RATE, seed=n)) for n in (1003, 1100, 2000, 1003)]
    alone = [tokenizer.encode_codes(w) for w in waves]
    together = tokenizer.encode_codes(waves)  # 1003 and 1100 share a padded length
    assert all(torch.equal(a, b) for a, b in zip(alone, together))
    assert len(torch.cat(alone).unique()) > 3

    batch = torch.stack([torch.nn.functional.pad(waves[0], (0, 997)), waves[2]])
    mask = torch.zeros(2, 2000, dtype=torch.bool)
    mask[0, :1003], mask[1] = True, True
    codes = tokenizer.encode_codes(batch, attention_mask=mask)
    frames = FAMILIES[name][2](1003)
    assert torch.equal(codes[0, :frames], alone[0]) and codes[0, frames:].abs().sum() == 0
    assert torch.equal(codes[1], alone[2])


def test_neucodec_reconstructs_at_the_input_rate_through_the_cli(folders, tone, tmp_path):
    from sonotok.cli import main

    tokenizer = load_tokenizer(folders["neucodec"])
    wave = tone(3000, 22050)
    rebuilt = tokenizer.reconstruct(torch.from_numpy(wave), sample_rate=22050)
    assert tuple(rebuilt.shape) == (3000,) and rebuilt.abs().max() > 0

    src = tmp_path / "in" / "a.wav"
    src.parent.mkdir()
    sf.write(src, wave, 22050, subtype="FLOAT")
    out = tmp_path / "out"
    assert (
        main(["reconstruct", str(src.parent), "-o", str(out), "--model", folders["neucodec"]]) == 0
    )
    audio, rate = sf.read(out / "a.wav", dtype="float32")
    assert rate == 22050 and audio.shape == (3000,)
    assert np.allclose(audio, rebuilt.numpy(), atol=1e-4)
