"""Set-level generation metrics: Fréchet distance between embedding distributions, KL
divergence between paired tag distributions, and CLAP score."""

from __future__ import annotations

import numpy as np


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of embeddings.

    Args:
        embeddings: (N, D) array, N >= 2.
    Returns:
        (mu (D,), sigma (D, D)) in float64.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"need an (N, D) array with N >= 2 embeddings for a covariance, got shape {x.shape}; "
            "evaluate more files"
        )
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``,

    the FAD / FD formula (Kilgour et al. 2019; Heusel et al. 2017). The trace of the matrix
    square root is the sum of square roots of the eigenvalues of ``sigma1 sigma2`` (real and
    non-negative for covariance matrices; round-off below zero is clipped), which stays finite
    for singular covariances (fewer embeddings than dimensions) without an epsilon offset.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: {mu1.shape}/{s1.shape} vs {mu2.shape}/{s2.shape}")
    diff = mu1 - mu2
    eigenvalues = np.linalg.eigvals(s1 @ s2)
    tr_covmean = float(np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum())
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


def frechet_distance_from_embeddings(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two (N, D) embedding sets."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


# Below this many embeddings per set (or 2 per dimension) a Fréchet distance is mostly its
# sample-size bias: the estimate shrinks as N grows (Chong & Forsyth 2020, "Effectively
# Unbiased FID"), so values from different N cannot be compared.
MIN_FRECHET_SAMPLES = 100


def frechet_sample_size_warning(name: str, generated: int, reference: int, dim: int) -> str:
    """A sentence for the report when either set is small for a ``dim``-dimensional
    covariance, else ""."""
    needed = max(MIN_FRECHET_SAMPLES, 2 * dim)
    n = min(generated, reference)
    if n >= needed:
        return ""
    singular = f"; with N ≤ {dim} its covariance is singular" if n <= dim else ""
    return (
        f"{name} is from {generated} generated and {reference} reference embeddings of "
        f"dimension {dim}, fewer than the {needed} (max of {MIN_FRECHET_SAMPLES} and 2 × "
        f"dimension) a stable estimate needs{singular}: it is dominated by sample-size bias "
        "and comparable only with values computed on the same numbers of clips; evaluate more "
        "clips"
    )


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kl_divergence_softmax(reference_logits: np.ndarray, generated_logits: np.ndarray) -> np.ndarray:
    """Per-pair KL(p_ref || p_gen) in nats, where p = softmax of the classifier's logits.

    Args:
        reference_logits, generated_logits: (N, C) logits of N paired clips (same row = pair).
    Returns:
        (N,) array; its mean is the reported KL (AudioLDM / AudioGen convention).
    """
    ref = np.asarray(reference_logits, dtype=np.float64)
    gen = np.asarray(generated_logits, dtype=np.float64)
    if ref.shape != gen.shape:
        raise ValueError(f"paired logits differ in shape: {ref.shape} vs {gen.shape}")
    log_p, log_q = _log_softmax(ref), _log_softmax(gen)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def kl_divergence_sigmoid(reference_logits: np.ndarray, generated_logits: np.ndarray) -> np.ndarray:
    """Per-pair KL summed over independent Bernoulli tags (p = sigmoid of logits), in nats.

    Args:
        reference_logits, generated_logits: (N, C) paired logits.
    Returns:
        (N,) array.
    """
    ref = np.asarray(reference_logits, dtype=np.float64)
    gen = np.asarray(generated_logits, dtype=np.float64)
    if ref.shape != gen.shape:
        raise ValueError(f"paired logits differ in shape: {ref.shape} vs {gen.shape}")
    # log sigmoid(x) = -softplus(-x); log(1 - sigmoid(x)) = -softplus(x)
    log_p, log_1p = -np.logaddexp(0, -ref), -np.logaddexp(0, ref)
    log_q, log_1q = -np.logaddexp(0, -gen), -np.logaddexp(0, gen)
    p = np.exp(log_p)
    return (p * (log_p - log_q) + (1 - p) * (log_1p - log_1q)).sum(axis=-1)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays -> (N,)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return (a * b).sum(axis=-1)
