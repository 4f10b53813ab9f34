"""The README's promise: the folders `sonotok corpus make` writes plug into every recipe as
sources — tokenizer training data, enhancement clean/noise data and evaluation sets."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from sonotok.core.config import build


def test_corpus_clips_are_tokenizer_training_data(corpus_dir):
    from sonotok.tokenizer.train.data import (
        AudioCropDataset,
        SourceConfig,
        check_sources,
        collate_crops,
        open_source,
    )

    clips = str(corpus_dir / "clips")
    train_rows = len(datasets.load_from_disk(clips)["train"])
    for entry in ({"path": clips, "type": "hf"}, {"path": clips}):  # README form, bare path
        source = open_source(build(SourceConfig, entry, "data.sources[0]"))
        assert len(source) == train_rows > 0  # the train split of the DatasetDict
        crops = collate_crops([AudioCropDataset([source], [1.0], 6400, 0)[p] for p in range(6)])
        assert crops["audio"].shape == (6, 6400) and crops["unreadable"] == 0
        assert float(crops["audio"].abs().amax(dim=1).min()) > 0.01  # every crop holds sound
    (check,) = check_sources([source], 6400)
    assert (check.checked, check.usable) == (len(source), len(source))


def test_corpus_clips_and_noise_are_enhancement_data(corpus_dir):
    from sonotok.enhancement.data import AudioSource, MixedPairs, check_audio
    from sonotok.enhancement.mixing import MixConfig, snr

    clean = AudioSource(str(corpus_dir / "clips"), "data.clean")
    noise = AudioSource({"path": str(corpus_dir / "noise"), "split": "train"}, "data.noise")
    assert check_audio(noise).usable == len(noise) > 0
    example = MixedPairs(clean, noise, MixConfig((5, 5), (0, 0)), 8000, seed=0)[3]
    assert example.noisy.shape == example.clean.shape == (8000,)
    assert abs(snr(example.clean.numpy(), example.noisy.numpy()) - 5) < 0.01


def test_corpus_clips_are_an_evaluation_set(corpus_dir):
    from sonotok.evaluation.data import discover

    items = discover(corpus_dir / "clips", split="test")
    assert sorted(it.domain for it in items) == ["music", "sound", "speech"]
    assert all(it.caption and it.path is None for it in items)  # rows of the stored dataset
    wave = items[0].load(16000)
    assert wave.dtype == torch.float32 and wave.shape == (32000,)  # 2 s at 16 kHz
    assert np.isfinite(wave.numpy()).all() and float(wave.abs().max()) > 0.01
