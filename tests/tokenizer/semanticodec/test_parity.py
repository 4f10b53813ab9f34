"""Parity of the SemantiCodec encoder with the reference implementation.

The fixture (tests/fixtures/semanticodec_parity/, made by make_semanticodec_encoder_parity.py with
the reference code, torchaudio, timm and vector-quantize-pytorch in a separate environment) holds
reduced random encoders in the official release layout for token rates 100/50/25, input waves,
and the reference's tokens, quantized features and fbank rows.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sonotok.tokenizer.semanticodec import SemantiCodec
from sonotok.tokenizer.semanticodec.encoder import num_segments, segment_fbank
from sonotok.tokenizer.semanticodec.fbank import kaldi_fbank

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "semanticodec_parity"
TOL = 1e-4
RATES = (100, 50, 25)


@pytest.fixture(scope="module")
def cases():
    return load_file(str(FIXTURE / "encoder_cases.safetensors"))


@pytest.fixture(scope="module")
def waves(cases):
    music = cases["wave.long.int16"].float() / 32768
    tail = music[:48000].clone()
    tail[32000:] = 0.0
    return {
        "short": music[:1234],
        "float_quirk": music[:7680],
        "clip": music[:20800],
        "silent_tail": tail,
        "segment": music[:163840],
        "long": music,
    }


def load(rate: int) -> SemantiCodec:
    overrides = json.loads((FIXTURE / "encoder_overrides.json").read_text())[str(rate)]
    name = f"{FIXTURE / 'official'}:{rate}tps-4096"
    return SemantiCodec.from_pretrained(name, decoder=False, overrides=overrides)


@pytest.fixture(scope="module")
def models():
    return {rate: load(rate) for rate in RATES}


def test_fbank_matches_torchaudio_kaldi(cases, waves):
    clip = waves["clip"] - waves["clip"].mean()
    assert (kaldi_fbank(clip)[:40] - cases["fbank.clip.raw"]).abs().max() < TOL


def test_segment_fbank_matches_reference_across_the_boundary(cases, waves):
    wave = waves["long"]
    padded = torch.nn.functional.pad(wave, (0, num_segments(len(wave)) * 163840 - len(wave)))
    padded = padded - padded.mean()
    first, second = segment_fbank(padded, 0), segment_fbank(padded, 1)
    whole = torch.cat([first, second])
    assert (whole[1000:1030] - cases["fbank.long.rows"]).abs().max() < TOL
    assert (whole[-40:] - cases["fbank.long.tail"]).abs().max() < TOL


@pytest.mark.parametrize("rate", RATES)
def test_tokens_identical_to_reference(models, cases, waves, rate):
    model = models[rate]
    codes = model.encode_codes(list(waves.values()))
    for (name, _), ours in zip(waves.items(), codes):
        ref = cases[f"tokens.{rate}.{name}"].long()
        assert ours.shape == ref.shape, name
        assert torch.equal(ours, ref), name
        assert ours.shape[0] == model.num_latent_frames(len(waves[name]))


@pytest.mark.parametrize("rate", RATES)
def test_quantized_features_match_reference(models, cases, waves, rate):
    for name in ("clip", "silent_tail"):
        ours = models[rate].encode(waves[name])
        ref = cases[f"features.{rate}.{name}"]
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max() < TOL


def test_tokens_are_diverse(cases):
    tokens = cases["tokens.100.long"]
    assert tokens[:, 0].unique().numel() > 5 and tokens[:, 1].unique().numel() > 5
