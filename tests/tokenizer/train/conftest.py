"""Fixtures for the tokenizer training tests: a folder of generated audio with one broken
file, and a tiny, fast training config built from configs/tokenizer/tiny.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[3]
TINY_YAML = REPO / "configs" / "tokenizer" / "tiny.yaml"


@pytest.fixture(scope="session")
def audio_folder(tmp_path_factory, tone) -> Path:
    """Six 1 s clips at 16 kHz, one 44.1 kHz stereo FLAC, one file that is not audio."""
    root = tmp_path_factory.mktemp("train_audio")
    for i in range(6):
        sf.write(root / f"clip{i}.wav", tone(16000, 16000, seed=i), 16000)
    stereo = np.stack([tone(44100, 44100, seed=7), tone(44100, 44100, seed=8)], 1)
    sf.write(root / "stereo.flac", stereo, 44100)
    (root / "broken.wav").write_text("this is not audio")
    return root


@pytest.fixture(scope="session")
def tiny_yaml() -> Path:
    return TINY_YAML


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine the
    threads' spin-waiting makes each step ~10x slower; the launched processes get
    OMP_NUM_THREADS=1 for the same reason."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
