"""Noisy/clean training pairs made on the fly: reverb, SNR, gain jitter, never clipping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MixConfig:
    """How clean speech and noise are combined (ranges are drawn uniformly per example)."""

    snr_db: tuple[float, float] = (-5.0, 20.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)  # applied to mixture and target together
    reverb_prob: float = 0.0  # chance of convolving the speech with an impulse response
    peak: float = 0.99  # both signals are scaled down together if either would exceed this

    def __post_init__(self):
        self.snr_db = tuple(float(v) for v in self.snr_db)
        self.gain_db = tuple(float(v) for v in self.gain_db)
        for name in ("snr_db", "gain_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}=[{lo}, {hi}]: the low end is above the high end")
        if not 0.0 <= self.reverb_prob <= 1.0:
            raise ValueError(f"reverb_prob={self.reverb_prob}; it is a probability in [0, 1]")


def fit_length(noise: np.ndarray, length: int, offset: int) -> np.ndarray:
    """`length` samples of `noise` starting at `offset`, looping it when it is shorter."""
    if noise.shape[0] == 0:
        return np.zeros(length, dtype=np.float32)
    reps = -(-(offset % noise.shape[0] + length) // noise.shape[0])
    looped = np.tile(noise, reps + 1)
    start = offset % noise.shape[0]
    return looped[start : start + length]


def reverberate(speech: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response aligned to its direct path (its largest tap), scaled
    so that tap is 1: the reverberant speech stays time-aligned with the dry target."""
    peak = int(np.argmax(np.abs(rir)))
    rir = rir[peak:] / (np.abs(rir[peak]) + 1e-12)
    n = speech.shape[0] + rir.shape[0] - 1
    size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(speech, size) * np.fft.rfft(rir, size), size)
    return wet[: speech.shape[0]].astype(np.float32)


def mix(
    clean: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    gain_db: float = 0.0,
    rir: np.ndarray | None = None,
    peak: float = 0.99,
) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noise of the same length) → (noisy, target), float32.

    The noise is scaled to `snr_db` relative to the (possibly reverberant) speech, both
    signals get the same `gain_db`, and both are scaled down together when either would
    exceed `peak`, so nothing clips and the pair stays consistent. Target: the dry speech.
    """
    clean = clean.astype(np.float32)
    speech = reverberate(clean, rir) if rir is not None else clean
    p_speech = float(np.mean(speech.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise.astype(np.float64) ** 2))
    scale = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10))) if p_noise > 0 else 0.0
    noisy = speech + scale * noise.astype(np.float32)
    gain = 10 ** (gain_db / 20)
    loudest = gain * max(float(np.abs(noisy).max(initial=0)), float(np.abs(clean).max(initial=0)))
    if loudest > peak:
        gain *= peak / loudest
    return (gain * noisy).astype(np.float32), (gain * clean).astype(np.float32)


def snr(target: np.ndarray, noisy: np.ndarray) -> float:
    """SNR in dB of `noisy` against `target` (for checks and reports)."""
    err = np.mean((noisy.astype(np.float64) - target) ** 2)
    return float(10 * np.log10(np.mean(target.astype(np.float64) ** 2) / max(err, 1e-20)))
