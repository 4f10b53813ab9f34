"""Background noises for speech enhancement: coloured noise, mains hum, fans, babble,
traffic and hiss. Kept in their own dataset so a denoiser's noise never overlaps the
clean clips it is mixed with.

Babble is several espeak-ng voices in different languages talking at once, so it needs
espeak-ng; every other type is numpy (+ sox filters).
"""

from __future__ import annotations

import numpy as np

from .clip import Clip, fit_length, pick
from .speech import make_speech, voices
from .synth import SR, colored_noise, smooth_envelope, tone
from .tools import sox

COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}


def _colored(rng, n, color):
    return colored_noise(rng, n, COLORS[color]), f"{color} noise", f"Stationary {color} noise"


def _hum(rng, n):
    mains = int(pick(rng, [50, 60]))
    harmonics = tuple(rng.uniform(0.1, 1.0) / (k + 1) for k in range(10))
    x = tone(mains, n, harmonics) + 0.05 * colored_noise(rng, n, 0.0)
    return x, "hum", f"Electrical mains hum at {mains} Hz with harmonics"


def _fan(rng, n):
    blade = rng.uniform(15, 40)
    x = colored_noise(rng, n, 1.3) * (1 + 0.1 * np.sin(2 * np.pi * blade * np.arange(n) / SR))
    x = sox(x, ["lowpass", f"{rng.uniform(3000, 6000):.0f}"]) + 0.2 * tone(blade * 4, n, (1.0, 0.5))
    return x, "fan", "Steady whoosh of an electric fan"


def _babble(rng, n):
    talkers = int(rng.integers(4, 9))
    pool = voices(("espeak-ng",))
    out = np.zeros(n)
    for _ in range(talkers):
        speech = make_speech(rng, 6.0, pool).wave
        speech = speech / (np.sqrt(np.mean(speech**2)) + 1e-9)
        start = int(rng.integers(-speech.shape[0] // 2, n))
        while start < n:  # repeat each talker to fill the clip
            a, b = max(0, start), min(n, start + speech.shape[0])
            out[a:b] += speech[a - start : b - start] * rng.uniform(0.5, 1.0)
            start += speech.shape[0] + int(rng.uniform(0.1, 0.6) * SR)
    return out, "babble", f"Babble noise: {talkers} voices talking at once"


def _traffic(rng, n):
    x = colored_noise(rng, n, 2.0) * smooth_envelope(rng, n, 0.6, 0.4, 1.0)
    x = x + 0.3 * colored_noise(rng, n, 1.0) * smooth_envelope(rng, n, 0.4, 0.0, 1.0)
    return sox(x, ["lowpass", "3000"]), "traffic", "Distant road traffic rumble"


def _hiss(rng, n):
    x = colored_noise(rng, n, -0.5)
    return sox(x, ["highpass", "2000"]), "hiss", "Tape hiss, high-frequency noise"


TYPES = {
    "white": lambda rng, n: _colored(rng, n, "white"),
    "pink": lambda rng, n: _colored(rng, n, "pink"),
    "brown": lambda rng, n: _colored(rng, n, "brown"),
    "blue": lambda rng, n: _colored(rng, n, "blue"),
    "hum": _hum,
    "fan": _fan,
    "babble": _babble,
    "traffic": _traffic,
    "hiss": _hiss,
}


def make_noise(rng: np.random.Generator, seconds: float, kinds: list[str] | None = None) -> Clip:
    """A `seconds`-long noise clip; `event` is its type (white, pink, ..., babble)."""
    kind = pick(rng, kinds or list(TYPES))
    n = int(seconds * SR)
    wave, _, caption = TYPES[kind](rng, n)
    facts = dict(event=kind, duration=n / SR)
    return Clip(fit_length(wave, n), caption + ".", "noise", facts)
