"""PANNs CNN14 (Kong et al., 2020): 2048-d clip embeddings for FD and AudioSet tag logits for KL.

Variants (released checkpoints on Zenodo record 3987831, loaded strictly):
- ``16k``: ``Cnn14_16k_mAP=0.438.pth`` — 16 kHz, 512-point window, hop 160, mels 50–8000 Hz
  (what AudioLDM's evaluation uses for 16 kHz audio),
- ``32k``: ``Cnn14_mAP=0.431.pth`` — 32 kHz, 1024-point window, hop 320, mels 50–14000 Hz.

Front end (torchlibrosa, stored in the checkpoint as buffers, recomputed identically here):
STFT as a conv1d with periodic-Hann-windowed DFT kernels over a reflect-padded signal
(center=True), power spectrum, 64 Slaney mel bands (librosa), ``10 log10(max(x, 1e-10))``.
Network: BatchNorm over mel bins, six conv blocks (64…2048 channels, 2×2 average pooling except
the last), mean over frequency, max + mean over time, fc1 (2048, ReLU) = embedding,
fc_audioset (527) = tag logits (sigmoid gives the clipwise output).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .embedders import download_weights, load_local_weights
from .spectral import mel_filters

ZENODO = "https://zenodo.org/record/3987831/files/"
AUDIOSET_CLASSES = 527


@dataclass(frozen=True)
class Cnn14Config:
    """Front-end settings of a released CNN14 checkpoint."""

    sample_rate: int
    window_size: int
    hop_size: int
    fmin: float
    fmax: float
    mel_bins: int = 64
    checkpoint: str = ""


VARIANTS = {
    "16k": Cnn14Config(16000, 512, 160, 50.0, 8000.0, checkpoint="Cnn14_16k_mAP=0.438.pth"),
    "32k": Cnn14Config(32000, 1024, 320, 50.0, 14000.0, checkpoint="Cnn14_mAP=0.431.pth"),
}


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool > 1 else x


class _ConvSTFT(nn.Module):
    """Power spectrogram via conv1d DFT kernels (torchlibrosa ``STFT`` parameter layout)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        angle = 2 * torch.pi * k[:, None] * n[None, :] / n_fft
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        with torch.no_grad():
            self.conv_real.weight.copy_((torch.cos(angle) * window)[:, None].float())
            self.conv_imag.weight.copy_((-torch.sin(angle) * window)[:, None].float())
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L) -> (B, 1, frames, n_fft // 2 + 1) power."""
        x = F.pad(x[:, None], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        power = self.conv_real(x) ** 2 + self.conv_imag(x) ** 2
        return power.transpose(1, 2)[:, None]


class Cnn14(nn.Module):
    """CNN14; parameter names match the released checkpoints.

    forward: wave (Tensor): (B, L) at ``config.sample_rate`` ->
        (embedding (B, 2048), logits (B, 527)).
    """

    def __init__(self, config: Cnn14Config) -> None:
        super().__init__()
        self.config = config
        self.spectrogram_extractor = nn.Module()
        self.spectrogram_extractor.stft = _ConvSTFT(config.window_size, config.hop_size)
        self.logmel_extractor = nn.Module()
        fb = mel_filters(
            config.sample_rate, config.window_size, config.mel_bins, config.fmin, config.fmax
        )
        self.logmel_extractor.melW = nn.Parameter(fb.T.clone(), requires_grad=False)
        self.bn0 = nn.BatchNorm2d(config.mel_bins)
        widths = (1, 64, 128, 256, 512, 1024, 2048)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, AUDIOSET_CLASSES)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        power = self.spectrogram_extractor.stft(wave)  # (B, 1, T, bins)
        mel = power @ self.logmel_extractor.melW  # (B, 1, T, 64)
        x = 10.0 * torch.log10(mel.clamp(min=1e-10))
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)
        x = x.mean(dim=3)  # over frequency
        x = x.max(dim=2).values + x.mean(dim=2)  # over time
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)


class PANNsEmbedder:
    """FD embedder (one 2048-d row per clip) that also returns AudioSet logits for KL."""

    name = "panns"

    def __init__(self, model: Cnn14, cache_id: str | None = None) -> None:
        self.model = model.eval()
        self.sample_rate = model.config.sample_rate
        self.cache_id = cache_id or f"panns-{model.config.checkpoint}"

    @classmethod
    def from_pretrained(cls, weights: str | None = None, variant: str = "16k") -> PANNsEmbedder:
        """Released CNN14 from a local .pth (``--panns-weights``) or downloaded once."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown CNN14 variant {variant!r}; choose from {sorted(VARIANTS)}")
        config = VARIANTS[variant]
        if weights:
            state = load_local_weights(weights, "PANNs CNN14")
        else:
            url = ZENODO + config.checkpoint.replace("=", "%3D") + "?download=1"
            state = download_weights(url, config.checkpoint, "PANNs CNN14", "--panns-weights")
        state = state.get("model", state)
        model = Cnn14(config)
        model.load_state_dict(state, strict=True)
        return cls(model)

    @torch.no_grad()
    def embed(self, wave: torch.Tensor) -> dict[str, np.ndarray]:
        x = torch.as_tensor(wave, dtype=torch.float32).reshape(1, -1)
        # five 2x2 poolings need >= 32 frames; shorter clips are zero-padded to that
        cfg = self.model.config
        shortest = cfg.window_size + 32 * cfg.hop_size
        x = F.pad(x, (0, max(0, shortest - x.shape[1])))
        embedding, logits = self.model(x)
        return {"embedding": embedding.numpy(), "logits": logits[0].numpy()}
