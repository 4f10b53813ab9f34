"""Fitting the semantic codebook: mini-batch k-means really clusters, and the result plugs in."""

import numpy as np
import pytest
import torch

from sonotok.core.errors import ConfigError, DataError
from sonotok.tokenizer.semanticodec.kmeans import (
    clip_features,
    fit_kmeans,
    fit_semantic_codebook,
    save_codebook,
    use_codebook,
)
from sonotok.tokenizer.semanticodec.loading import read_centroids


def blobs(seed=0, k=6, dim=5, per=200):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g) * 10
    points = centres.repeat_interleave(per, 0) + torch.randn(k * per, dim, generator=g) * 0.3
    return centres, points[torch.randperm(len(points), generator=g)]


def test_kmeans_recovers_separated_clusters():
    centres, points = blobs()
    fitted = fit_kmeans(points, 6, iterations=30, batch_size=256, seed=1)
    distance = torch.cdist(centres, fitted)
    assert distance.min(1).values.max() < 0.2  # every true centre has a fitted one nearby
    assert distance.argmin(1).unique().numel() == 6  # and each its own
    inertia = torch.cdist(points, fitted).min(1).values.pow(2).mean()
    random = torch.cdist(points, points[:6]).min(1).values.pow(2).mean()
    assert inertia < 0.5 < random


def test_kmeans_is_seeded():
    _, points = blobs(1)
    a = fit_kmeans(points, 4, iterations=5, batch_size=64, seed=3)
    assert torch.equal(a, fit_kmeans(points, 4, iterations=5, batch_size=64, seed=3))
    assert not torch.equal(a, fit_kmeans(points, 4, iterations=5, batch_size=64, seed=4))


def test_kmeans_refuses_too_few_points():
    with pytest.raises(DataError, match="at least num_centroids=10"):
        fit_kmeans(torch.randn(5, 3), 10)


def test_fit_on_audio_save_in_release_layout_and_use(make_codec, tmp_path):
    codec = make_codec(100, seed=2)
    g = torch.Generator().manual_seed(0)
    waves = [torch.randn(6000, generator=g) * 0.1, torch.sin(torch.arange(9000) * 0.05) * 0.3]
    features = torch.cat([clip_features(codec, w) for w in waves])
    # frames up to the last fbank frame that sees audio (the rest is padding): 6000 samples →
    # fbank frames 0..37 → ceil(512 · 38 / 1024) = 19 tokens; 9000 → 0..56 → 29
    assert features.shape == (19 + 29, 8)
    centroids = fit_semantic_codebook(codec, waves, num_centroids=5, iterations=20, seed=0)
    assert centroids.shape == (5, 8) and centroids.dtype == np.float32
    path = save_codebook(tmp_path / "codebook_idx" / "codebook_5_0.npy", centroids)
    assert np.array_equal(np.load(path, allow_pickle=False), centroids)
    assert torch.equal(read_centroids(path, 8), torch.from_numpy(centroids))
    before = torch.cdist(features, codec.encoder.centroids).min(1).values.pow(2).mean()
    use_codebook(codec, centroids)
    after = torch.cdist(features, codec.encoder.centroids).min(1).values.pow(2).mean()
    assert after < before  # fitted on these features: closer than the random codebook
    codes = codec.encode_codes(waves[0])
    assert codes[:, 0].max() < 5 and codec.config.num_centroids == 5
    with pytest.raises(ConfigError, match="needs"):
        use_codebook(codec, np.zeros((3, 4), dtype=np.float32))
