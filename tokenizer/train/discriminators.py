"""GAN discriminators for the decoder: multi-frequency (the paper's), multi-period and
multi-resolution (Vocos'). Each maps audio (B, N) to a list with one (score, features) pair
per sub-discriminator: score (B, ...) logits, features the intermediate maps used by the
feature-matching loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

Outputs = list[tuple[torch.Tensor, list[torch.Tensor]]]

SLOPE = 0.1  # LeakyReLU slope of HiFi-GAN / Vocos discriminators


def _stft(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """x (B, N) → complex (B, n_fft // 2 + 1, frames), centred, scaled by n_fft^-0.5."""
    return torch.stft(
        x.float(), n_fft, hop, window=window, center=True, normalized=True, return_complex=True
    )


class ConvStack(nn.Module):
    """Conv2d layers with LeakyReLU between, then a 1-channel post conv.
    x (B, C, H, W) → score (B, 1, H', W'), features [each layer's output]."""

    def __init__(self, layers: list[nn.Conv2d], post: nn.Conv2d):
        super().__init__()
        self.layers = nn.ModuleList(weight_norm(conv) for conv in layers)
        self.post = weight_norm(post)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.layers:
            x = F.leaky_relu(conv(x), SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x, features


class MultiFrequencyDiscriminator(nn.Module):
    """STFT magnitude and phase at several resolutions (hop h, n_fft = window = 4h), each
    judged by a Conv2d stack over (frequency, time); VISinger2's multi-frequency design,
    used by the DashengTokenizer paper."""

    def __init__(self, hops: list[int] = (128, 256, 512), channels: int = 32):
        super().__init__()
        self.hops = list(hops)
        for h in self.hops:
            self.register_buffer(f"window_{h}", torch.hann_window(4 * h), persistent=False)
        c = channels
        widths = [c, 2 * c, 4 * c, 8 * c, 8 * c]
        self.stacks = nn.ModuleList()
        for _ in self.hops:
            layers = [nn.Conv2d(2, widths[0], (9, 3), padding=(4, 1))]
            layers += [
                nn.Conv2d(a, b, (9, 3), stride=(2, 1), padding=(4, 1))
                for a, b in zip(widths[:-2], widths[1:-1])
            ]
            layers.append(nn.Conv2d(widths[-2], widths[-1], (3, 3), padding=(1, 1)))
            self.stacks.append(ConvStack(layers, nn.Conv2d(widths[-1], 1, (3, 3), padding=(1, 1))))

    @staticmethod
    def magnitude_phase(spec: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """complex (B, F, T) → (B, 2, F, T). Phase is 0 (with zero gradient) where the
        magnitude is below eps: atan2 and |z| have undefined gradients at z = 0, which
        zero-padded crops produce exactly."""
        re, im = spec.real, spec.imag
        power = re.square() + im.square()
        live = power > eps**2
        mag = torch.sqrt(torch.clamp(power, min=eps**2))
        phase = torch.where(
            live, torch.atan2(torch.where(live, im, 0), torch.where(live, re, 1)), 0
        )
        return torch.stack([mag, phase], dim=1)

    def forward(self, x: torch.Tensor) -> Outputs:
        out = []
        for h, stack in zip(self.hops, self.stacks):
            spec = _stft(x, 4 * h, h, getattr(self, f"window_{h}"))
            out.append(stack(self.magnitude_phase(spec)))
        return out


class PeriodDiscriminator(nn.Module):
    """Audio folded into (N / p, p) columns, Conv2d over time only (HiFi-GAN / Vocos MPD)."""

    def __init__(self, period: int, channels: int = 32):
        super().__init__()
        self.period = period
        c = channels
        widths = [1, c, 4 * c, 16 * c, 32 * c, 32 * c]
        layers = [
            nn.Conv2d(a, b, (5, 1), stride=(3, 1) if i < 4 else (1, 1), padding=(2, 0))
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))
        ]
        self.stack = ConvStack(layers, nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, n = x.shape
        pad = (-n) % self.period
        x = F.pad(x[:, None], (0, pad), mode="reflect")[:, 0] if pad else x
        return self.stack(x.reshape(b, 1, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """Vocos' multi-period discriminator (periods 2, 3, 5, 7, 11)."""

    def __init__(self, periods: list[int] = (2, 3, 5, 7, 11), channels: int = 32):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, x: torch.Tensor) -> Outputs:
        return [d(x) for d in self.discriminators]


class BandedSpectrogramDiscriminator(nn.Module):
    """Complex STFT (real, imag) split into frequency bands, a Conv2d stack per band over
    (time, frequency), bands joined before the post conv (DAC / Vocos MRD)."""

    BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))  # fractions of Nyquist

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        bins = n_fft // 2 + 1
        self.edges = [(int(a * bins), int(b * bins)) for a, b in self.BANDS]
        c = channels

        def band() -> nn.ModuleList:
            convs = [nn.Conv2d(2, c, (3, 9), padding=(1, 4))]
            convs += [nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4)) for _ in range(3)]
            convs.append(nn.Conv2d(c, c, (3, 3), padding=(1, 1)))
            return nn.ModuleList(weight_norm(conv) for conv in convs)

        self.bands = nn.ModuleList(band() for _ in self.BANDS)
        self.post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x - x.mean(dim=-1, keepdim=True)
        x = 0.8 * x / (x.abs().amax(dim=-1, keepdim=True) + 1e-9)
        spec = _stft(x, self.n_fft, self.n_fft // 4, self.window)
        spec = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, T, F)
        features, joined = [], []
        for (lo, hi), convs in zip(self.edges, self.bands):
            h = spec[..., lo:hi]
            for conv in convs:
                h = F.leaky_relu(conv(h), SLOPE)
                features.append(h)
            joined.append(h)
        score = self.post(torch.cat(joined, dim=-1))
        features.append(score)
        return score, features


class MultiResolutionDiscriminator(nn.Module):
    """Vocos' (DAC-style) multi-resolution discriminator: n_fft 2048, 1024, 512, 5 bands."""

    def __init__(self, n_ffts: list[int] = (2048, 1024, 512), channels: int = 32):
        super().__init__()
        self.discriminators = nn.ModuleList(
            BandedSpectrogramDiscriminator(n, channels) for n in n_ffts
        )

    def forward(self, x: torch.Tensor) -> Outputs:
        return [d(x) for d in self.discriminators]


class Discriminators(nn.Module):
    """The enabled discriminators by name ("mfd", "mpd", "mrd"), run together so one
    distributed wrapper covers them. x (B, N) → {name: Outputs}."""

    def __init__(self, discriminators: dict[str, nn.Module]):
        super().__init__()
        if not discriminators:
            raise ValueError("no discriminator enabled")
        self.discriminators = nn.ModuleDict(discriminators)

    def forward(self, x: torch.Tensor) -> dict[str, Outputs]:
        return {name: d(x) for name, d in self.discriminators.items()}


def build_discriminators(settings) -> tuple[Discriminators, dict[str, float]]:
    """From `DiscriminatorSettings`: the module and each enabled one's loss weight."""
    made, weights = {}, {}
    if settings.mfd > 0:
        made["mfd"] = MultiFrequencyDiscriminator(settings.mfd_hops, settings.mfd_channels)
        weights["mfd"] = settings.mfd
    if settings.mpd > 0:
        made["mpd"] = MultiPeriodDiscriminator(settings.mpd_periods, settings.mpd_channels)
        weights["mpd"] = settings.mpd
    if settings.mrd > 0:
        made["mrd"] = MultiResolutionDiscriminator(settings.mrd_n_ffts, settings.mrd_channels)
        weights["mrd"] = settings.mrd
    return Discriminators(made), weights
