"""Audio in and out: any file soundfile reads → mono float32 at the model's rate.

soundfile (libsndfile) reads wav, flac, ogg/vorbis/opus and mp3; soxr resamples.
Every problem a user's file can have is raised as one `AudioInputError` that names
the file and says what to do.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

SAMPLE_RATE = 16000  # DashengTokenizer works at 16 kHz
MIN_SAMPLES = 640  # one latent frame (40 ms at 16 kHz); the 1024-point STFT also needs > 512
WRITABLE = {".wav": "WAV", ".flac": "FLAC"}


class AudioInputError(ValueError):
    """An input (file or array) that cannot be turned into latents; the message says why and what to do."""


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality); float32 out."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(wave, dtype=np.float32)
    if wave.ndim == 1:
        return soxr.resample(wave.astype(np.float32), orig_sr, target_sr).astype(np.float32)
    out = soxr.resample(np.ascontiguousarray(wave.T, dtype=np.float32), orig_sr, target_sr)
    return np.ascontiguousarray(out.T, dtype=np.float32)


def restore_rate_and_length(
    wave: torch.Tensor, from_rate: int, to_rate: int, num_samples: int | None = None
) -> torch.Tensor:
    """Model-rate audio (…, N) back to a file's rate and exact sample count (trim or zero-pad)."""
    if to_rate != from_rate:
        wave = torch.from_numpy(resample(wave.detach().cpu().numpy(), from_rate, to_rate)).to(
            wave.device
        )
    if num_samples is not None:
        wave = torch.nn.functional.pad(wave, (0, max(0, num_samples - wave.shape[-1])))[
            ..., :num_samples
        ]
    return wave


def check_wave(wave: torch.Tensor | np.ndarray, name: str, min_samples: int = MIN_SAMPLES) -> None:
    """Raise AudioInputError if a 16 kHz mono wave is empty, non-finite or too short."""
    n = wave.shape[-1]
    if n == 0:
        raise AudioInputError(
            f"{name}: the audio is empty (0 samples); pass a file with sound in it"
        )
    isfinite = torch.isfinite if isinstance(wave, torch.Tensor) else np.isfinite
    block = 1 << 20  # checked in blocks so hour-long inputs need no full-size mask
    if not all(bool(isfinite(wave[..., i : i + block]).all()) for i in range(0, n, block)):
        raise AudioInputError(
            f"{name}: the audio contains NaN or infinite samples; re-export it or replace them "
            "(e.g. numpy.nan_to_num) before encoding"
        )
    if n < min_samples:
        raise AudioInputError(
            f"{name}: the audio is too short ({n} samples at 16 kHz); it needs at least {min_samples} "
            f"samples ({1000 * min_samples / SAMPLE_RATE:.0f} ms) for one latent frame; pad it with silence"
        )


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a file as float32 (frames, channels) and its sample rate, without converting."""
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: no such file; check the path")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioInputError(
            f"{path}: cannot be read as audio ({err}); sonotok reads wav, flac, ogg and mp3 — "
            "convert it, e.g. `ffmpeg -i INPUT out.wav`"
        ) from None
    return data, sr


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) → (frames,) by averaging channels."""
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]


@dataclass
class AudioClip:
    """A file decoded for the model: mono float32 `wave` at `sample_rate` (16 kHz by
    default), plus the file's own rate and length to restore them on output."""

    wave: torch.Tensor
    sample_rate: int
    original_sample_rate: int
    original_num_samples: int
    channels: int


def read_clip(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> AudioClip:
    """Read any soundfile-readable file as mono float32 at `sample_rate`, keeping its
    original rate, length and channel count. Raises AudioInputError for missing,
    unreadable, empty, non-finite or too-short audio."""
    data, sr = read_audio(path)
    if data.shape[0] == 0:
        raise AudioInputError(
            f"{path}: the file holds no audio samples; pass a file with sound in it"
        )
    wave = resample(to_mono(data), sr, sample_rate)
    check_wave(wave, str(path), min_samples=max(1, MIN_SAMPLES * sample_rate // SAMPLE_RATE))
    return AudioClip(torch.from_numpy(wave), sample_rate, sr, data.shape[0], data.shape[1])


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """A file as a mono float32 tensor (N,) at `sample_rate`: integer PCM scaled to
    [-1, 1], channels averaged, rate converted with soxr (see `read_clip`)."""
    return read_clip(path, sample_rate).wave


def atomic_path(path: str | os.PathLike):
    """A temporary sibling of `path` to write to, then `os.replace` onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_audio(
    path: str | os.PathLike,
    wave: torch.Tensor | np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> None:
    """Write (N,) or (N, channels) audio to .wav/.flac atomically (temp file + rename).

    Default subtype is 16-bit PCM (samples are clipped to [-1, 1]); pass e.g.
    subtype="FLOAT" to keep wav samples unquantised.
    """
    path = Path(path)
    fmt = WRITABLE.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: cannot write {path.suffix!r} files; use one of {sorted(WRITABLE)}"
        )
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().float().cpu().numpy()
    wave = np.asarray(wave, dtype=np.float32)
    subtype = subtype or "PCM_16"
    if subtype.startswith("PCM"):
        wave = np.clip(wave, -1.0, 1.0)
    tmp = atomic_path(path)
    try:
        sf.write(str(tmp), wave, sample_rate, format=fmt, subtype=subtype)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
