"""One generated clip: a 16 kHz mono wave, its caption and the facts the caption states.

Every generator returns a `Clip`; the builder turns it into one dataset row. Loudness is
set here, once, so all domains share the same level range and the same WAV encoding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from sonotok.core.audio import SAMPLE_RATE
from sonotok.core.errors import SonotokError

# Columns every row has, beside `audio`; facts that do not apply to a domain are None.
METADATA_COLUMNS = {
    "voice": "string",
    "language": "string",
    "rate": "string",
    "sentence": "string",
    "instrument": "string",
    "tempo": "int32",
    "key": "string",
    "mood": "string",
    "event": "string",
    "duration": "float32",
}


class CorpusError(SonotokError, RuntimeError):
    """A corpus cannot be built (a tool is missing, the output exists, bad flags); says the fix."""


@dataclass
class Clip:
    """wave (ndarray): (N,) float32 at 16 kHz; `facts` holds METADATA_COLUMNS entries."""

    wave: np.ndarray
    caption: str
    domain: str
    facts: dict = field(default_factory=dict)


def item_rng(seed: int, domain: str, index: int) -> np.random.Generator:
    """The generator owning one clip: a clip depends only on (seed, domain, index), so a
    corpus is the same for any worker count and a larger corpus extends a smaller one."""
    code = sum(ord(c) * 31**i for i, c in enumerate(domain)) % 2**31
    return np.random.default_rng([seed, code, index])


def pick(rng: np.random.Generator, options):
    """One element of a sequence, drawn with `rng`."""
    return options[int(rng.integers(len(options)))]


def fit_length(wave: np.ndarray, num_samples: int, fade: int = 800) -> np.ndarray:
    """Cut to `num_samples` with a short fade-out, or zero-pad to it."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.shape[0] >= num_samples:
        wave = wave[:num_samples].copy()
        n = min(fade, num_samples)
        wave[num_samples - n :] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
        return wave
    return np.pad(wave, (0, num_samples - wave.shape[0]))


def set_loudness(wave: np.ndarray, rms_db: float, peak: float = 0.95) -> np.ndarray:
    """Scale to `rms_db` dBFS RMS, lowered if needed so the peak stays below `peak`."""
    wave = np.asarray(wave, dtype=np.float64)
    rms = np.sqrt(np.mean(wave**2))
    if not np.isfinite(rms) or rms == 0:
        raise CorpusError("a generator produced a silent or non-finite clip (a bug in sonotok)")
    gain = 10 ** (rms_db / 20) / rms
    gain = min(gain, peak / np.abs(wave).max())
    return (wave * gain).astype(np.float32)


def encode_wav(wave: np.ndarray) -> bytes:
    """16-bit PCM WAV bytes at 16 kHz (deterministic: same wave, same bytes)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
