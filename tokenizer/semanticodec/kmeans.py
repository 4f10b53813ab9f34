"""Fitting SemantiCodec's semantic codebook (k-means centroids) on your own audio.

The release's centroids were fitted on AudioSet-dominated AudioMAE features; for another domain
(speech only, one instrument) fit new ones: gather the AudioMAE features of your clips (patches
merged as the token rate says, padding frames left out), run seeded mini-batch k-means
(k-means++ start on a sample, then Sculley's per-centre learning rates), and either save them in
the release's .npy layout (`save_codebook`, (V, D) float32, `np.load`-able by the reference) or
put them into a model (`use_codebook`). The acoustic branch was trained against the original
centroids, so a refitted codebook changes acoustic tokens too: retrain it (or the decoder) after.

    from sonotok.tokenizer import load_tokenizer
    from sonotok.tokenizer.semanticodec.kmeans import fit_semantic_codebook, save_codebook
    codec = load_tokenizer("haoheliu/SemantiCodec:100tps-16384", decoder=False)
    centroids = fit_semantic_codebook(codec, "my_clips/", num_centroids=8192)
    save_codebook("codebook_8192_0.npy", centroids)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from sonotok.core.errors import ConfigError, DataError
from sonotok.core.io import atomic_write

from .configs import SAMPLE_RATE, SEGMENT_SAMPLES
from .encoder import num_segments, padding_cutoff, segment_fbank

__all__ = [
    "clip_features",
    "fit_kmeans",
    "fit_semantic_codebook",
    "save_codebook",
    "use_codebook",
]


@torch.no_grad()
def clip_features(codec, wave: torch.Tensor, chunks_per_pass: int = 8) -> torch.Tensor:
    """(N,) wave at 16 kHz → (M, D) AudioMAE features of its real (non-padding) frames."""
    encoder = codec.encoder
    wave = wave.to(codec.device, torch.float32)
    segments = num_segments(wave.shape[-1])
    padded = torch.nn.functional.pad(wave, (0, segments * SEGMENT_SAMPLES - wave.shape[-1]))
    padded = padded - padded.mean()
    out = []
    for start in range(0, segments, chunks_per_pass):
        index = range(start, min(segments, start + chunks_per_pass))
        fbank = torch.stack([segment_fbank(padded, s) for s in index])
        features = encoder.semantic_features(fbank)
        for feature, cut in zip(features, padding_cutoff(fbank, features.shape[1])):
            out.append(feature[:cut])
    return torch.cat(out)[: codec.num_latent_frames(wave.shape[-1])]


def _waves(audio) -> Iterable[torch.Tensor]:
    if isinstance(audio, (str, os.PathLike)):
        from sonotok.core.sources import open_source

        source = open_source(str(audio), sample_rate=SAMPLE_RATE)
        return (source[i].wave for i in range(len(source)))
    return (torch.as_tensor(w, dtype=torch.float32) for w in audio)


def _kmeans_pp(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre drawn with probability ∝ squared distance."""
    first = torch.randint(len(points), (1,), generator=generator)
    centres = [points[first[0]]]
    nearest = (points - centres[0]).pow(2).sum(-1)
    for _ in range(1, k):
        weights = nearest.clamp_min(0)
        if float(weights.sum()) <= 0:  # fewer distinct points than centres: pick any
            pick = torch.randint(len(points), (1,), generator=generator)[0]
        else:
            pick = torch.multinomial(weights, 1, generator=generator)[0]
        centres.append(points[pick])
        nearest = torch.minimum(nearest, (points - points[pick]).pow(2).sum(-1))
    return torch.stack(centres)


def _assign(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    distances = (
        points.pow(2).sum(-1, keepdim=True) + centres.pow(2).sum(-1)[None] - 2 * points @ centres.T
    )
    return distances.argmin(-1)


def fit_kmeans(
    points: torch.Tensor,
    num_centroids: int,
    iterations: int = 100,
    batch_size: int = 4096,
    seed: int = 0,
) -> torch.Tensor:
    """Seeded mini-batch k-means of (M, D) points → (num_centroids, D) float32 centres.

    Start: k-means++ on at most 20·k points. Then `iterations` batches: each point moves its
    nearest centre towards it with rate 1 / (points that centre has taken so far). Same
    points, same seed → same centres."""
    points = points.float()
    if points.dim() != 2 or len(points) < num_centroids:
        raise DataError(
            f"k-means needs at least num_centroids={num_centroids} feature vectors, got "
            f"{len(points)}; pass more audio or ask for fewer centroids"
        )
    if num_centroids < 1 or iterations < 0 or batch_size < 1:
        raise ConfigError("num_centroids and batch_size must be ≥ 1 and iterations ≥ 0")
    generator = torch.Generator().manual_seed(seed)
    sample = points[torch.randperm(len(points), generator=generator)[: 20 * num_centroids]]
    centres = _kmeans_pp(sample, num_centroids, generator)
    counts = torch.zeros(num_centroids)
    size = min(batch_size, len(points))
    for _ in range(iterations):
        batch = points[torch.randint(len(points), (size,), generator=generator)]
        nearest = _assign(batch, centres)
        # Sculley's per-point steps c += (x − c) / n within a batch add up to a running mean
        taken = torch.zeros(num_centroids).index_add_(0, nearest, torch.ones(size))
        sums = torch.zeros_like(centres).index_add_(0, nearest, batch)
        moved = taken > 0
        total = counts + taken
        centres[moved] = (centres[moved] * counts[moved, None] + sums[moved]) / total[moved, None]
        counts = total
    return centres.contiguous()


def fit_semantic_codebook(
    codec,
    audio: Iterable[torch.Tensor | np.ndarray] | str | os.PathLike,
    num_centroids: int,
    iterations: int = 100,
    batch_size: int = 4096,
    seed: int = 0,
    chunks_per_pass: int = 8,
) -> np.ndarray:
    """Centroids (num_centroids, D) float32 fitted on the AudioMAE features of `audio` (16 kHz
    mono waves, or a source sonotok reads: folder, manifest, dataset)."""
    features = [clip_features(codec, w, chunks_per_pass).cpu() for w in _waves(audio)]
    if not features:
        raise DataError("no audio given to fit the semantic codebook on")
    points = torch.cat(features)
    return fit_kmeans(points, num_centroids, iterations, batch_size, seed).numpy()


def save_codebook(path: str | os.PathLike, centroids: np.ndarray | torch.Tensor) -> Path:
    """Write centroids as the release does: a (V, D) float32 .npy (no pickle)."""
    array = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32))
    if array.ndim != 2:
        raise ConfigError(f"centroids must be (V, D), got shape {array.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    atomic_write(path, write)
    return path


def use_codebook(codec, centroids: np.ndarray | torch.Tensor) -> None:
    """Replace `codec`'s semantic centroids (same width; any count) in place."""
    table = torch.as_tensor(np.asarray(centroids, dtype=np.float32))
    if table.dim() != 2 or table.shape[1] != codec.config.feature_dim:
        raise ConfigError(
            f"centroids of shape {tuple(table.shape)}; this model needs (V, "
            f"{codec.config.feature_dim})"
        )
    encoder = codec.encoder
    encoder.centroids = table.to(encoder.centroids.device)
    codec.config.num_centroids = table.shape[0]
    codec.config.semantic_vocab_size = table.shape[0]
