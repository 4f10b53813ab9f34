"""Tokenizer and codec GAN losses: hinge and least-squares adversarial terms, feature matching,
(multi-scale) log-mel L1, and the semantic alignment term ‖z_sem − z_ac‖² of the
DashengTokenizer paper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..mel import MelSpectrogram
from .discriminators import Outputs


def discriminator_hinge(real: Outputs, fake: Outputs) -> torch.Tensor:
    """mean over sub-discriminators of mean(relu(1 − D(x))) + mean(relu(1 + D(G(z))))."""
    terms = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake)]
    return torch.stack(terms).mean()


def generator_hinge(fake: Outputs) -> torch.Tensor:
    """mean over sub-discriminators of mean(relu(1 − D(G(z))))."""
    return torch.stack([F.relu(1 - f).mean() for f, _ in fake]).mean()


def feature_matching(real: Outputs, fake: Outputs) -> torch.Tensor:
    """mean over sub-discriminators of Σ_layers mean|f_real − f_fake| (real features detached)."""
    terms = [
        sum(torch.mean(torch.abs(a.detach() - b)) for a, b in zip(fr, ff))
        for (_, fr), (_, ff) in zip(real, fake)
    ]
    return torch.stack(terms).mean()


def mean_score(outputs: Outputs) -> torch.Tensor:
    """Mean logit over all sub-discriminators (for monitoring D)."""
    return torch.stack([s.detach().float().mean() for s, _ in outputs]).mean()


def semantic_alignment(z_sem: torch.Tensor, z_ac: torch.Tensor) -> torch.Tensor:
    """L_sem = mean (z_sem − z_ac)² over (B, T, D); z_sem comes from the frozen encoder."""
    return F.mse_loss(z_ac, z_sem.detach())


class MelLoss(nn.Module):
    """L1 distance of log(clamp(mel, 1e-7)) magnitude mel spectrograms; x, y (B, N) → scalar."""

    def __init__(
        self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100
    ):
        super().__init__()
        self.mel = MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=1.0
        )

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, n_mels, frames)."""
        return torch.log(torch.clamp(self.mel(x.float()), min=1e-7))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.log_mel(y), self.log_mel(x))


def discriminator_least_squares(real: Outputs, fake: Outputs) -> torch.Tensor:
    """LS-GAN (HiFi-GAN / DAC): mean over sub-discriminators of mean((1 − D(x))²) + mean(D(G(z))²)."""
    terms = [(1 - r).square().mean() + f.square().mean() for (r, _), (f, _) in zip(real, fake)]
    return torch.stack(terms).mean()


def generator_least_squares(fake: Outputs) -> torch.Tensor:
    """LS-GAN: mean over sub-discriminators of mean((1 − D(G(z)))²)."""
    return torch.stack([(1 - f).square().mean() for f, _ in fake]).mean()


class MultiScaleMelLoss(nn.Module):
    """Mean of `MelLoss` over (n_fft, n_mels) scales, hop n_fft // 4 each (one scale
    (1024, 100) is Vocos' / UniCodec's mel loss; several are DAC's multi-scale one)."""

    def __init__(self, sample_rate: int, scales: list[tuple[int, int]]):
        super().__init__()
        self.losses = nn.ModuleList(MelLoss(sample_rate, n, n // 4, m) for n, m in scales)

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, n_mels, frames) of the first scale (for images)."""
        return self.losses[0].log_mel(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([loss(x, y) for loss in self.losses]).mean()
