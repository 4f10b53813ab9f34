"""Shared fixtures: tiny random models and generated audio (no downloads, no files from elsewhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sonotok.tokenizer import AudioTokenizer, TokenizerConfig


def tone_mix(num_samples: int, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Audio-like test signal: a few sines with an envelope plus a little noise, peak ≈ 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    x = sum(
        rng.uniform(0.2, 1)
        * np.sin(2 * np.pi * rng.uniform(100, 0.45 * sample_rate) * t + rng.uniform(0, 6))
        for _ in range(4)
    )
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.05 * rng.standard_normal(num_samples)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_tokenizer() -> AudioTokenizer:
    torch.manual_seed(0)
    model = AudioTokenizer(TokenizerConfig.tiny())
    # Non-trivial BatchNorm statistics so the semantic features are O(1).
    bn = model.semantic.init_bn
    bn.running_mean.uniform_(-60, -20)
    bn.running_var.uniform_(200, 400)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, tiny_tokenizer) -> str:
    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    tiny_tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tone():
    """`tone(num_samples, sample_rate=16000, seed=0)` → float32 numpy test signal."""
    return tone_mix


@pytest.fixture()
def empty_hub_cache(tmp_path, monkeypatch):
    """An empty, offline Hugging Face cache: no official model is available locally."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


class _Payload:
    """Pickles to a call of os.system: unpickling it runs a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


# Every file name accelerate's load_state would unpickle from a checkpoint folder.
PICKLED_CHECKPOINT_FILES = (
    "custom_checkpoint_0.pkl",
    "custom_checkpoint_1.pkl",
    "random_states_0.pkl",
    "optimizer.bin",
    "optimizer_1.bin",
    "scheduler.bin",
    "scheduler_1.bin",
    "pytorch_model.bin",
    "sampler.bin",
    "dl_state_dict.bin",
    "scaler.pt",
)


@pytest.fixture()
def plant_pickles(tmp_path):
    """`plant_pickles(folder)` writes code-running pickles under every name accelerate would
    unpickle in a checkpoint `folder`; returns the file that exists only if one of them ran."""

    def plant(folder) -> Path:
        marker = Path(tmp_path) / "PWNED"
        for name in PICKLED_CHECKPOINT_FILES:
            torch.save(_Payload(f"touch {marker}"), Path(folder) / name)
        return marker

    return plant
