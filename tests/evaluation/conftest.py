"""Evaluation fixtures: speech synthesised with espeak-ng, noise at a known SNR."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from sonotok.tokenizer import load_audio

SENTENCES = {
    "a1": "The quick brown fox jumps over the lazy dog near the river bank.",
    "a2": "Please call Stella and ask her to bring these things with her from the store.",
    "b1": "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
}
VOICES = {"a1": "en-us", "a2": "en-us", "b1": "en-gb+f3"}


def add_noise(clean: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    """clean + white Gaussian noise scaled to the given SNR (power ratio) in dB."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    clean64 = clean.double()
    scale = torch.sqrt(clean64.pow(2).mean() / (noise.pow(2).mean() * 10 ** (snr_db / 10)))
    return (clean64 + scale * noise).float()


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict[str, torch.Tensor]:
    """Three ~3-4 s utterances at 16 kHz: a1, a2 (one voice), b1 (another voice)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for the speech tests: apt-get install espeak-ng")
    folder = tmp_path_factory.mktemp("speech")
    out = {}
    for key, text in SENTENCES.items():
        path = folder / f"{key}.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICES[key], "-s", "150", "-w", str(path), text],
            check=True,
            capture_output=True,
        )
        wave = load_audio(path, 16000)
        out[key] = 0.5 * wave / wave.abs().max()
    return out


@pytest.fixture()
def noisy(speech) -> torch.Tensor:
    """Utterance a2 at 5 dB SNR of white noise."""
    return add_noise(speech["a2"], 5.0, seed=1)


def rms_db(x: torch.Tensor) -> float:
    return float(10 * np.log10(x.double().pow(2).mean()))
