"""Mel and STFT distances as the DAC toolkit (``audiotools`` / ``dac.nn.loss``) computes them.

Both are multi-scale L1 distances between log-magnitude spectrograms of a reference and an
estimate. The defaults reproduce the numbers DAC's evaluation reports (``mel`` and ``stft``
columns); every parameter is spelled out below so a table can say exactly what was measured.

STFT (``audiotools.AudioSignal.stft`` with default parameters):
  - window: square root of a periodic Hann window (``"sqrt_hann"``, audiotools' default),
  - n_fft = window length, hop = window length // 4,
  - ``torch.stft(center=True)`` with reflect padding, magnitude ``|X|``.

Mel distance (``MelSpectrogramLoss`` as configured in DAC's training/eval config):
  - window lengths 32, 64, 128, 256, 512, 1024, 2048 with 5, 10, 20, 40, 80, 160, 320 mel bands,
  - mel filters: librosa's Slaney-scale, Slaney-normalised filters, f_min 0, f_max = sr / 2,
    applied to the magnitude (not power) spectrogram,
  - per scale: ``mean |log10(clamp(M_x, 1e-5) ** 1) - log10(clamp(M_y, 1e-5) ** 1)|``
    (``pow=1``, ``clamp_eps=1e-5``, ``log_weight=1``, ``mag_weight=0``), summed over scales.

STFT distance (``MultiScaleSTFTLoss`` defaults):
  - window lengths 2048 and 512,
  - per scale: ``mean |log10(clamp(|X|, 1e-5) ** 2) - log10(clamp(|Y|, 1e-5) ** 2)|``
    plus ``mean ||X| - |Y||`` (``pow=2``, ``clamp_eps=1e-5``, ``log_weight=1``, ``mag_weight=1``),
    summed over scales.

The clamp comes before the power as in ``dac.nn.loss`` (the older
``audiotools.metrics.spectral`` squares first; that only differs for magnitudes below 3.2e-3).

Here signals are compared at 16 kHz (sonotok's rate), so these numbers compare with other
16 kHz evaluations, not with DAC's 44.1 kHz tables.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

# DAC config `MelSpectrogramLoss.window_lengths` / `.n_mels` (descript-audio-codec conf/base.yml).
DAC_MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
DAC_MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)
# `MultiScaleSTFTLoss()` defaults in audiotools / dac.nn.loss.
DAC_STFT_WINDOWS = (2048, 512)
# `clamp_eps` default of both losses.
DAC_CLAMP_EPS = 1e-5


@dataclass(frozen=True)
class SpectralDistance:
    """A multi-scale log-magnitude L1 distance (DAC's ``MelSpectrogramLoss`` /
    ``MultiScaleSTFTLoss``).

    Args:
        window_lengths: STFT window (= n_fft) per scale; hop is ``window // 4``.
        n_mels: mel bands per scale, or None for a linear-frequency (STFT) distance.
        pow: exponent applied to the clamped magnitude before ``log10``.
        clamp_eps: lower clamp on the magnitude before the power and log.
        log_weight: weight of the log-magnitude L1 term.
        mag_weight: weight of the linear-magnitude L1 term.
        mel_fmin: lowest mel filter edge in Hz.
        mel_fmax: highest mel filter edge in Hz (None: sample_rate / 2).
    """

    window_lengths: tuple[int, ...]
    n_mels: tuple[int, ...] | None = None
    pow: float = 2.0
    clamp_eps: float = DAC_CLAMP_EPS
    log_weight: float = 1.0
    mag_weight: float = 1.0
    mel_fmin: float = 0.0
    mel_fmax: float | None = None

    def __call__(self, estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> float:
        """Distance between two signals.

        Args:
            estimate (Tensor): (L,) or (B, L) estimate signal.
            reference (Tensor): same shape, reference signal.
            sample_rate: rate of both signals (for the mel filters).
        Returns:
            float: the distance (0 for identical signals), averaged over a batch.
        """
        x, y = _as_batch(estimate, reference)
        total = 0.0
        for i, window in enumerate(self.window_lengths):
            mag_x, mag_y = _magnitude(x, window), _magnitude(y, window)
            if self.n_mels is not None:
                fb = mel_filters(sample_rate, window, self.n_mels[i], self.mel_fmin, self.mel_fmax)
                mag_x, mag_y = fb @ mag_x, fb @ mag_y
            if self.log_weight:
                log_x = mag_x.clamp(min=self.clamp_eps).pow(self.pow).log10()
                log_y = mag_y.clamp(min=self.clamp_eps).pow(self.pow).log10()
                total += self.log_weight * (log_x - log_y).abs().mean().item()
            if self.mag_weight:
                total += self.mag_weight * (mag_x - mag_y).abs().mean().item()
        return float(total)


# DAC's evaluation mel distance (`mel` column of scripts/evaluate.py with conf/base.yml).
MEL_DISTANCE = SpectralDistance(
    window_lengths=DAC_MEL_WINDOWS, n_mels=DAC_MEL_BANDS, pow=1.0, mag_weight=0.0
)
# DAC's evaluation STFT distance (`stft` column: MultiScaleSTFTLoss defaults).
STFT_DISTANCE = SpectralDistance(window_lengths=DAC_STFT_WINDOWS, pow=2.0, mag_weight=1.0)


def mel_distance(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> float:
    """DAC mel distance (lower is better; 0 for identical signals). See module docstring."""
    return MEL_DISTANCE(estimate, reference, sample_rate)


def stft_distance(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> float:
    """DAC multi-scale STFT distance (lower is better; 0 for identical signals)."""
    return STFT_DISTANCE(estimate, reference, sample_rate)


def min_length(distance: SpectralDistance = STFT_DISTANCE) -> int:
    """Fewest samples a signal needs: reflect padding needs more than n_fft // 2 samples."""
    return max(distance.window_lengths) // 2 + 1


@lru_cache(maxsize=64)
def _sqrt_hann(window: int) -> torch.Tensor:
    # audiotools "sqrt_hann": sqrt(scipy.signal.get_window("hann", N)), a periodic Hann window.
    return torch.hann_window(window, periodic=True, dtype=torch.float64).sqrt().float()


@lru_cache(maxsize=64)
def mel_filters(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> torch.Tensor:
    """Slaney mel filterbank as ``librosa.filters.mel`` builds it (audiotools uses it).

    Returns:
        Tensor: (n_mels, n_fft // 2 + 1) float32.
    """
    import librosa

    with warnings.catch_warnings():
        # Narrow windows leave some of the many bands empty; DAC accepts that, and so do we.
        warnings.simplefilter("ignore", UserWarning)
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return torch.from_numpy(np.ascontiguousarray(fb)).float()


def _magnitude(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, L) -> (B, window // 2 + 1, frames) STFT magnitude, audiotools conventions."""
    spec = torch.stft(
        x,
        n_fft=window,
        hop_length=window // 4,
        window=_sqrt_hann(window),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spec.abs()


def _as_batch(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(estimate, dtype=torch.float32)
    y = torch.as_tensor(reference, dtype=torch.float32)
    if x.shape != y.shape:
        raise ValueError(
            f"estimate and reference differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}; "
            "trim or pad them to the same length first"
        )
    if x.dim() == 1:
        x, y = x[None], y[None]
    if x.shape[-1] < min_length():
        raise ValueError(
            f"signal of {x.shape[-1]} samples is too short for the spectral distances "
            f"(needs at least {min_length()} samples)"
        )
    return x, y


def log_mel_image(
    wave: torch.Tensor, sample_rate: int, n_mels: int = 80, top_db: float | None = 80.0
) -> np.ndarray:
    """Log-mel spectrogram in dB for pictures: (n_mels, frames), low frequencies first.

    1024-sample periodic Hann window, hop 256, Slaney mel filters, power in dB (floor 1e-10)
    and, unless ``top_db`` is None, floored ``top_db`` below the maximum (librosa
    ``power_to_db`` conventions).
    """
    x = torch.as_tensor(wave, dtype=torch.float32).reshape(1, -1)
    n_fft = 1024
    if x.shape[-1] <= n_fft // 2:
        x = torch.nn.functional.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    spec = torch.stft(
        x,
        n_fft=n_fft,
        hop_length=n_fft // 4,
        window=torch.hann_window(n_fft),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = mel_filters(sample_rate, n_fft, n_mels) @ spec.abs()[0].pow(2)
    db = 10.0 * torch.log10(power.clamp(min=1e-10))
    if top_db is not None:
        db = torch.maximum(db, db.max() - top_db)
    return db.numpy()
