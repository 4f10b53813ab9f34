"""Tiny random SemantiCodec models for the encoder-side tests (no downloads)."""

import pytest
import torch

from sonotok.tokenizer.semanticodec import SemantiCodec, SemantiCodecConfig


def tiny_config(rate: int = 100, **overrides) -> SemantiCodecConfig:
    """Official layout and rules, tiny widths: ViT 8 wide, 3 blocks, 1 LSTM layer."""
    values = dict(
        token_rate=rate, semantic_vocab_size=32, num_centroids=24, acoustic_codebook_size=32,
        embed_dim=8, depth=3, num_heads=2, contextual_depth=0, lstm_layers=1,
    )  # fmt: skip
    values.update(overrides)
    return SemantiCodecConfig(**values)


def randomise(codec: SemantiCodec, seed: int = 0) -> SemantiCodec:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in codec.encoder.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(
                1.0 + 0.2 * noise if "norm" in name and name.endswith("weight") else 0.3 * noise
            )
        codec.encoder.centroids.copy_(torch.randn(codec.encoder.centroids.shape, generator=g))
        codec.encoder.acoustic_codebook.copy_(
            torch.randn(codec.encoder.acoustic_codebook.shape, generator=g)
        )
        codec.encoder.audiomae.reset_positions()
    return codec.eval()


def build(rate: int = 100, seed: int = 0, **overrides) -> SemantiCodec:
    """A tiny random codec (test modules get this function from the `make_codec` fixture)."""
    return randomise(SemantiCodec(tiny_config(rate, **overrides)), seed)


@pytest.fixture(scope="session")
def make_codec():
    return build


@pytest.fixture(scope="session")
def make_config():
    return tiny_config


@pytest.fixture(scope="module")
def codec() -> SemantiCodec:
    return build()


@pytest.fixture(scope="module")
def wave() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(12000) / 16000
    return 0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.05 * torch.randn(12000, generator=g)
