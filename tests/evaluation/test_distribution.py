"""Fréchet distance against closed forms; KL divergences."""

import numpy as np
import pytest
from scipy import linalg

from sonotok.evaluation import (
    frechet_distance,
    frechet_distance_from_embeddings,
    gaussian_stats,
    kl_divergence_sigmoid,
    kl_divergence_softmax,
)


def _random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(
        expected, rel=1e-10
    )


def test_frechet_distance_of_general_gaussians_is_2_wasserstein():
    rng = np.random.default_rng(0)
    d = 6
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    # W2^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), via symmetric eigh
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_one_dimensional_case():
    assert frechet_distance(
        np.array([2.0]), np.array([[9.0]]), np.array([0.0]), np.array([[1.0]])
    ) == pytest.approx(4.0 + (3.0 - 1.0) ** 2)


def test_identical_sets_have_zero_distance_and_sample_stats_are_used():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((500, 8))
    assert frechet_distance_from_embeddings(a, a.copy()) == pytest.approx(0.0, abs=1e-6)
    b = rng.standard_normal((500, 8)) * 2.0 + 1.0
    mu_a, s_a = gaussian_stats(a)
    mu_b, s_b = gaussian_stats(b)
    assert np.allclose(s_a, np.cov(a, rowvar=False))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real)
    assert frechet_distance_from_embeddings(a, b) == pytest.approx(expected, rel=1e-8)


def test_singular_covariances_still_give_a_finite_distance():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 16)), rng.standard_normal((5, 16))  # rank 4 < 16
    assert np.isfinite(frechet_distance_from_embeddings(a, b))


def test_too_few_embeddings_raise():
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 4)))


def test_kl_of_identical_distributions_is_zero():
    logits = np.random.default_rng(3).standard_normal((4, 527))
    assert np.allclose(kl_divergence_softmax(logits, logits.copy()), 0.0, atol=1e-12)
    assert np.allclose(kl_divergence_sigmoid(logits, logits.copy()), 0.0, atol=1e-12)


def test_kl_softmax_matches_definition_and_is_positive():
    p_logits = np.log(np.array([[0.7, 0.2, 0.1]]))
    q_logits = np.log(np.array([[0.2, 0.5, 0.3]]))
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.2, 0.5, 0.3])
    assert kl_divergence_softmax(p_logits, q_logits)[0] == pytest.approx(np.sum(p * np.log(p / q)))
    assert kl_divergence_softmax(q_logits + 5.0, p_logits)[0] > 0  # shift-invariant softmax


def test_kl_sigmoid_matches_bernoulli_definition():
    a, b = np.array([[0.3, -1.0]]), np.array([[1.2, 0.4]])
    p, q = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    expected = np.sum(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    assert kl_divergence_sigmoid(a, b)[0] == pytest.approx(expected)


def test_small_sets_get_a_sample_size_warning():
    from sonotok.evaluation.distribution import frechet_sample_size_warning

    assert frechet_sample_size_warning("fd_x", 600, 520, dim=256) == ""  # ≥ 2 × 256 each
    assert frechet_sample_size_warning("fd_x", 150, 150, dim=10) == ""  # ≥ 100
    mid = frechet_sample_size_warning("fd_x", 300, 1000, dim=256)
    assert "300 generated and 1000 reference" in mid and "fewer than the 512" in mid
    assert "singular" not in mid
    tiny = frechet_sample_size_warning("fd_vggish", 8, 8, dim=128)
    assert tiny.startswith("fd_vggish is from 8") and "covariance is singular" in tiny
