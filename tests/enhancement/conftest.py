"""Enhancement fixtures: folders of generated "speech" and noise, tiny denoisers and pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.enhancement import (
    DenoiserConfig,
    EnhancementPipeline,
    LatentDenoiser,
    TokenizerDenoiser,
)


@pytest.fixture(scope="session")
def speech_dirs(tmp_path_factory, tone):
    """(clean_dir, noise_dir): six 2 s tonal clips standing in for speech, three noise clips."""
    root = tmp_path_factory.mktemp("se_data")
    clean, noise = root / "clean", root / "noise"
    clean.mkdir()
    noise.mkdir()
    for i in range(6):
        sf.write(clean / f"c{i}.wav", tone(32000, 16000, seed=i), 16000)
    rng = np.random.default_rng(0)
    for i in range(3):
        color = (
            np.cumsum(rng.standard_normal(48000)) * 0.01 if i == 2 else rng.standard_normal(48000)
        )
        sf.write(noise / f"n{i}.wav", (0.3 * color / np.abs(color).max()).astype("float32"), 16000)
    return clean, noise


@pytest.fixture(scope="session")
def tiny_denoiser(tiny_tokenizer) -> LatentDenoiser:
    torch.manual_seed(1)
    cfg = DenoiserConfig.tiny(tiny_tokenizer.latent_dim)
    cfg.residual = False  # random non-identity output, so chunking differences show
    return LatentDenoiser(cfg).eval()


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_tokenizer, tiny_denoiser) -> EnhancementPipeline:
    return EnhancementPipeline(TokenizerDenoiser(tiny_tokenizer, tiny_denoiser))


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory, tiny_pipeline) -> str:
    folder = tmp_path_factory.mktemp("tiny_enhancer")
    tiny_pipeline.save_pretrained(folder)
    return str(folder)
