"""Small numpy signal builders shared by the sound and noise generators (16 kHz, float64)."""

from __future__ import annotations

import numpy as np

from sonotok.core.audio import SAMPLE_RATE

SR = SAMPLE_RATE


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ∝ 1/f^exponent (0 white, 1 pink, 2 brown, -1 blue), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    freqs[0] = freqs[1]
    spectrum *= freqs ** (-exponent / 2)
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def band_noise(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """White noise kept between `low` and `high` Hz (FFT mask), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[(freqs < low) | (freqs > high)] = 0
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def smooth_envelope(
    rng: np.random.Generator, n: int, points_per_second: float, low: float, high: float
) -> np.ndarray:
    """A slowly varying random gain in [low, high] (random points, cosine-interpolated)."""
    k = max(2, int(n / SR * points_per_second) + 2)
    values = rng.uniform(low, high, k)
    pos = np.linspace(0, k - 1, n)
    i = np.minimum(pos.astype(int), k - 2)
    frac = (1 - np.cos(np.pi * (pos - i))) / 2
    return values[i] * (1 - frac) + values[i + 1] * frac


def tone(
    freq: np.ndarray | float, n: int, harmonics: tuple[float, ...] = (1.0,), phase: float = 0.0
) -> np.ndarray:
    """A (possibly frequency-modulated) harmonic tone; `freq` is a scalar or a per-sample array."""
    f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    angle = 2 * np.pi * np.cumsum(f) / SR + phase
    return sum(a * np.sin((k + 1) * angle) for k, a in enumerate(harmonics))


def damped(freqs, decays, amps, n: int) -> np.ndarray:
    """Sum of exponentially decaying sines (a struck object): decays in seconds."""
    t = np.arange(n) / SR
    return sum(
        a * np.exp(-t / d) * np.sin(2 * np.pi * f * t) for f, d, a in zip(freqs, decays, amps)
    )


def place(out: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add `event` into `out` at sample `start` (clipped at the end)."""
    if start >= out.shape[0]:
        return
    stop = min(out.shape[0], start + event.shape[0])
    out[start:stop] += event[: stop - start]


def burst(rng: np.random.Generator, n: int, decay: float) -> np.ndarray:
    """White noise under an exponential decay (clicks, claps, knocks)."""
    t = np.arange(n) / SR
    return rng.standard_normal(n) * np.exp(-t / decay)


def gate(n: int, pattern: list[tuple[float, float]], ramp: float = 0.005) -> np.ndarray:
    """0/1 envelope that is on during each (start_s, stop_s), with short linear ramps."""
    env = np.zeros(n)
    r = max(1, int(ramp * SR))
    for start, stop in pattern:
        a, b = int(start * SR), min(n, int(stop * SR))
        if b <= a:
            continue
        env[a:b] = 1.0
        m = min(r, (b - a) // 2)
        if m:
            env[a : a + m] *= np.linspace(0, 1, m)
            env[b - m : b] *= np.linspace(1, 0, m)
    return env
