"""Audio in and out: any file soundfile reads → mono float32 at the model's rate.

soundfile (libsndfile) reads wav, flac, ogg/vorbis/opus, mp3 and aiff; soxr resamples.
Which files count as audio is `sonotok.core.sources.AUDIO_EXTENSIONS`, the one list.
Every problem a user's file can have is raised as one `AudioInputError` that names
the file and says what to do.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr
import torch

from sonotok.core.errors import AudioInputError
from sonotok.core.io import atomic_output, check_finite
from sonotok.core.io import atomic_path as atomic_path  # re-exported: callers import it from here

SAMPLE_RATE = 16000  # DashengTokenizer works at 16 kHz
MIN_SAMPLES = 640  # one latent frame (40 ms at 16 kHz); the 1024-point STFT also needs > 512
WRITABLE = {".wav": "WAV", ".flac": "FLAC"}

# Bounds on the work a file can ask for. A header may claim any rate or length, and decoding
# and resampling cost follow the claim (a 64 KB wav labelled 1 Hz becomes 2 GB at 16 kHz), so
# both are checked against what the file can really hold before any decoding or resampling.
MIN_FILE_RATE = 1_000  # Hz; real recordings start at 8 kHz (telephony), 1 kHz leaves margin
MAX_FILE_RATE = 768_000  # Hz; the highest rate audio converters record at
# Samples (all channels, and again after rate conversion) a file may yield per byte it holds on
# disk. PCM holds ≤ 1, lossy codecs ~10-20; FLAC/Vorbis/Opus of pure digital silence reach
# ~350 frames per byte (≤ 1000 samples for 8 channels), so genuine files stay far below.
MAX_SAMPLES_PER_BYTE = 2048
SIZE_CHECK_FLOOR = 1 << 22  # samples (4.4 min mono at 16 kHz, 16 MB) never refused for size
DECODE_BLOCK = 1 << 20  # samples (all channels) decoded at a time: memory never follows a header
_UNKNOWN_LENGTH = 2**63 - 1  # what libsndfile reports when a stream does not state its length


_HEADER_RATE_FIX = (
    "the header is corrupt or mislabelled — re-encode it at its true rate, "
    "e.g. `ffmpeg -i INPUT -ar 16000 out.wav`"
)


def check_sample_rate(rate: float, name: str, fix: str = _HEADER_RATE_FIX) -> None:
    """Raise AudioInputError unless MIN_FILE_RATE ≤ rate ≤ MAX_FILE_RATE (NaN is refused)."""
    if not MIN_FILE_RATE <= rate <= MAX_FILE_RATE:
        raise AudioInputError(
            f"{name}: sample rate {rate} Hz is outside the {MIN_FILE_RATE}–{MAX_FILE_RATE} Hz "
            f"real audio uses; {fix}"
        )


def size_limit(num_bytes: int) -> int:
    """The most samples a file of `num_bytes` may decode or resample to (MAX_SAMPLES_PER_BYTE)."""
    return max(SIZE_CHECK_FLOOR, MAX_SAMPLES_PER_BYTE * num_bytes)


def _check_size(name: str, what: str, samples: int, num_bytes: int) -> None:
    if samples > size_limit(num_bytes):
        raise AudioInputError(
            f"{name}: {what} {samples} samples from {num_bytes} bytes on disk, more than the "
            f"{MAX_SAMPLES_PER_BYTE} per byte any real audio file holds; the header is corrupt — "
            "re-encode the file, e.g. `ffmpeg -i INPUT out.wav`"
        )


def _resampled_length(frames: int, orig_sr: float, target_sr: float | None) -> int:
    return frames if target_sr is None else math.ceil(frames * target_sr / orig_sr)


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality); float32 out.

    Rates outside MIN_FILE_RATE..MAX_FILE_RATE raise AudioInputError: they only come from
    corrupt headers or wrong arguments and would make the output up to 16 000× the input."""
    if not (
        MIN_FILE_RATE <= orig_sr <= MAX_FILE_RATE and MIN_FILE_RATE <= target_sr <= MAX_FILE_RATE
    ):
        raise AudioInputError(
            f"cannot resample {orig_sr} Hz → {target_sr} Hz: both rates must lie within "
            f"{MIN_FILE_RATE}–{MAX_FILE_RATE} Hz; pass the audio's true sample rate"
        )
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


def check_wave(
    wave: torch.Tensor | np.ndarray,
    name: str,
    min_samples: int = MIN_SAMPLES,
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Raise AudioInputError if a mono wave (at `sample_rate`) is empty, non-finite or shorter
    than `min_samples` (one latent frame of the model that reads it)."""
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
            f"{name}: the audio is too short ({n} samples at {sample_rate / 1000:g} kHz); it needs "
            f"at least {min_samples} samples ({1000 * min_samples / sample_rate:.0f} ms) for one "
            "latent frame; pad it with silence"
        )


def _check_claim(
    name: str,
    rate: int,
    channels: int,
    frames: int,
    num_bytes: int,
    out_rate: int | None,
    mono: bool,
) -> None:
    """Refuse, before decoding, a rate or a stated length the file cannot really hold."""
    check_sample_rate(rate, name)
    if frames == _UNKNOWN_LENGTH:  # length not stated: the block decoder bounds it instead
        return
    claim = f"the header claims {frames} frames × {channels} channels ="
    _check_size(name, claim, frames * channels, num_bytes)
    out = _resampled_length(frames, rate, out_rate) * (1 if mono else channels)
    _check_size(name, f"converting {rate} Hz → {out_rate} Hz would make", out, num_bytes)


def _unreadable(name: str, err: Exception) -> AudioInputError:
    return AudioInputError(
        f"{name}: cannot be read as audio ({err}); sonotok reads wav, flac, ogg, mp3 and aiff — "
        "convert it, e.g. `ffmpeg -i INPUT out.wav`"
    )


def audio_info(
    source: str | os.PathLike | BinaryIO,
    name: str,
    num_bytes: int,
    *,
    out_rate: int | None = SAMPLE_RATE,
) -> tuple[int, int | None, int]:
    """(rate, frames, channels) from the header alone — frames None when the stream does not
    state its length — refused like `decode_bounded` refuses a rate or length the file cannot
    hold, so a crop can be chosen before anything is decoded."""
    try:
        with sf.SoundFile(source) as f:
            rate, frames, channels = f.samplerate, f.frames, f.channels
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        raise _unreadable(name, err) from None
    _check_claim(name, rate, channels, frames, num_bytes, out_rate, True)
    return rate, (None if frames == _UNKNOWN_LENGTH else frames), channels


def decode_bounded(
    source: str | os.PathLike | BinaryIO,
    name: str,
    num_bytes: int,
    *,
    mono: bool,
    out_rate: int | None = SAMPLE_RATE,
    start: int = 0,
    count: int | None = None,
) -> tuple[np.ndarray, int, int]:
    """Decode `source` in blocks → (data, rate, channels); data is float32 (frames,) averaged
    over channels when `mono`, else (frames, channels). `start` / `count` read only that span
    of frames (a training crop), never the rest of the file.

    The header's rate and length, and the decoded length as it grows, are checked against
    `num_bytes` (see MAX_SAMPLES_PER_BYTE, counting the output at `out_rate` too), so no header
    can make this allocate or compute more than a bounded multiple of the file's size.
    Raises AudioInputError naming `name` for unreadable, implausible or oversized audio.
    """
    try:
        with sf.SoundFile(source) as f:
            rate, channels = f.samplerate, f.channels
            _check_claim(name, rate, channels, f.frames, num_bytes, out_rate, mono)
            if start:
                f.seek(start)
            blocks, frames, step = [], 0, max(1, DECODE_BLOCK // channels)
            while (want := step if count is None else min(step, count - frames)) > 0:
                block = f.read(want, dtype="float32", always_2d=True)
                if not block.shape[0]:
                    break
                frames += block.shape[0]
                _check_size(name, "decoding gives more than", frames * channels, num_bytes)
                blocks.append(to_mono(block) if mono else block.copy())
    except AudioInputError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        raise _unreadable(name, err) from None
    out = _resampled_length(frames, rate, out_rate) * (1 if mono else channels)
    _check_size(name, f"converting {rate} Hz → {out_rate} Hz would make", out, num_bytes)
    empty = np.zeros((0,) if mono else (0, channels), np.float32)
    return (np.concatenate(blocks) if blocks else empty), rate, channels


def _file_size(path: str | os.PathLike) -> int:
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: no such file; check the path")
    return path.stat().st_size


def read_audio(
    path: str | os.PathLike, out_rate: int | None = SAMPLE_RATE
) -> tuple[np.ndarray, int]:
    """Read a file as float32 (frames, channels) and its sample rate, without converting.

    out_rate: the rate the caller will convert every channel to (None: none), so the size
    bound (see `decode_bounded`) covers that output too."""
    size = _file_size(path)
    data, rate, _ = decode_bounded(path, str(path), size, mono=False, out_rate=out_rate)
    return data, rate


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


def read_clip(path: str | os.PathLike, sample_rate: int | None = SAMPLE_RATE) -> AudioClip:
    """Read any soundfile-readable file as mono float32 at `sample_rate` (None: the file's
    own rate), keeping its original rate, length and channel count. Channels are averaged
    block by block, so memory follows the mono length. Raises AudioInputError for missing,
    unreadable, empty, non-finite or too-short audio, and for headers whose rate or length
    the file cannot really hold (see `decode_bounded`)."""
    if sample_rate is not None:
        check_sample_rate(sample_rate, "sample_rate argument", "pass e.g. 16000, or None")
    size = _file_size(path)
    mono, sr, channels = decode_bounded(path, str(path), size, mono=True, out_rate=sample_rate)
    if mono.shape[0] == 0:
        raise AudioInputError(
            f"{path}: the file holds no audio samples; pass a file with sound in it"
        )
    rate = sr if sample_rate is None else sample_rate
    wave = resample(mono, sr, rate)
    check_wave(wave, str(path), min_samples=max(1, MIN_SAMPLES * rate // SAMPLE_RATE))
    return AudioClip(torch.from_numpy(wave), rate, sr, mono.shape[0], channels)


def load_audio(path: str | os.PathLike, sample_rate: int | None = SAMPLE_RATE) -> torch.Tensor:
    """A file as a mono float32 tensor (N,) at `sample_rate` (None: keep the file's own rate;
    `read_clip(path, None).sample_rate` tells it): integer PCM scaled to [-1, 1], channels
    averaged, rate converted with soxr (see `read_clip`)."""
    return read_clip(path, sample_rate).wave


def write_audio(
    path: str | os.PathLike,
    wave: torch.Tensor | np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> None:
    """Write (N,) or (N, channels) audio to .wav/.flac atomically (temp file + rename).

    Default subtype is 16-bit PCM (samples are clipped to [-1, 1]); pass e.g.
    subtype="FLOAT" to keep wav samples unquantised. NaN/inf samples are refused
    (ModelOutputError) and a full disk raises DiskFullError, leaving no partial file.
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
    check_finite(wave, "audio", path)
    subtype = subtype or "PCM_16"
    if subtype.startswith("PCM"):
        wave = np.clip(wave, -1.0, 1.0)
    with atomic_output(path) as tmp:
        sf.write(str(tmp), wave, sample_rate, format=fmt, subtype=subtype)
