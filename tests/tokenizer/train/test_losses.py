"""Discriminators and GAN losses (the LR schedule is tested in tests/core/test_training.py)."""

import numpy as np
import pytest
import torch

from sonotok.tokenizer.train.discriminators import (
    MultiFrequencyDiscriminator,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
)
from sonotok.tokenizer.train.losses import (
    MelLoss,
    discriminator_hinge,
    feature_matching,
    generator_hinge,
    semantic_alignment,
)


def _outputs(*scores):
    return [(torch.full((2, 3), s), [torch.full((2, 4), s)]) for s in scores]


def test_hinge_and_feature_matching_values():
    # real scores 2 and 0.5, fake -2 and 0: relu(1-r) = 0, 0.5; relu(1+f) = 0, 1
    assert discriminator_hinge(_outputs(2.0, 0.5), _outputs(-2.0, 0.0)).item() == pytest.approx(
        (0 + 0.5 + 1) / 2
    )
    assert generator_hinge(_outputs(-1.0, 3.0)).item() == pytest.approx((2 + 0) / 2)
    # features |2 - (-1)| = 3 (layer) + |2 - (-1)| = 3 (score not a feature here): one layer each
    assert feature_matching(_outputs(2.0), _outputs(-1.0)).item() == pytest.approx(3.0)
    z = torch.ones(1, 5, 4)
    assert semantic_alignment(z, z + 2).item() == pytest.approx(4.0)


def test_mel_loss_is_zero_for_equal_and_grows_with_noise(tone):
    loss = MelLoss(n_mels=64)
    x = torch.from_numpy(tone(6400))[None]
    assert loss(x, x).item() == 0
    small, large = (loss(x, x + a * torch.randn_like(x)).item() for a in (0.01, 0.1))
    assert 0 < small < large


@pytest.mark.parametrize(
    "disc, count",
    [
        (MultiFrequencyDiscriminator([128, 256, 512], 4), 3),
        (MultiPeriodDiscriminator([2, 3, 5, 7, 11], 2), 5),
        (MultiResolutionDiscriminator([2048, 1024, 512], 4), 3),
    ],
)
def test_discriminators_score_and_pass_finite_gradients_through_zero_padding(disc, count, tone):
    x = torch.from_numpy(tone(6400))[None].repeat(2, 1)
    x[1, 3200:] = 0  # a zero-padded crop: exact zeros in the STFT
    x.requires_grad_(True)
    outputs = disc(x)
    assert len(outputs) == count
    for score, features in outputs:
        assert score.shape[0] == 2 and len(features) >= 3
        assert torch.equal(features[-1], score)
    sum(s.sum() for s, _ in outputs).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_discriminator_scores_are_per_example(tone):
    disc = MultiFrequencyDiscriminator([128, 256], 4)
    a, b = (torch.from_numpy(tone(6400, seed=s))[None] for s in (0, 1))
    together = disc(torch.cat([a, b]))
    alone = disc(b)
    assert all(torch.allclose(t[1:], s, atol=1e-6) for (t, _), (s, _) in zip(together, alone))


def test_trainable_view_computes_what_the_tokenizer_computes(tiny_tokenizer, tone):
    from sonotok.tokenizer.train.trainer import TrainableTokenizer

    audio = torch.from_numpy(np.stack([tone(6400, seed=s) for s in (0, 1)]))
    z_sem = torch.stack(tiny_tokenizer.semantic(list(audio)))
    with torch.no_grad():
        recon, z_ac = TrainableTokenizer(tiny_tokenizer)(audio, z_sem)
    assert torch.allclose(z_ac, tiny_tokenizer.encode(audio, features="acoustic"), atol=1e-5)
    assert torch.allclose(z_sem + z_ac, tiny_tokenizer.encode(audio), atol=1e-5)
    assert torch.allclose(recon, tiny_tokenizer.decode(tiny_tokenizer.encode(audio)), atol=1e-5)
    assert recon.shape == audio.shape
