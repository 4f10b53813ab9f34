"""Pure-torch mel front ends, numerically equal to torchaudio's definitions.

torchaudio does not import beside the CPU torch wheel, so the two front ends the
tokenizer needs are rebuilt here from their formulas: HTK mel filterbank without
area normalisation, periodic Hann window, reflect-padded centred STFT.

Both front ends compute any range of frames from the waveform with exactly the
values a whole-signal STFT would give, so long audio can be processed in pieces.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def hz_to_mel(freq: float) -> float:
    """HTK mel scale (torchaudio's default)."""
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int
) -> torch.Tensor:
    """Triangular HTK filters, no normalisation: (n_freqs, n_mels), like
    `torchaudio.functional.melscale_fbanks(..., norm=None, mel_scale="htk")`."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT over `num_samples` samples."""
    return 1 + num_samples // hop_length


class MelSpectrogram(nn.Module):
    """Centred (reflect-padded) STFT → |X|^power → mel, for one 1-D waveform.

    The window and filterbank are non-persistent buffers: they are derived from the
    constructor arguments, and checkpoints that store them are checked against them
    when loaded (see `sonotok.core.hub.load_strict`).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int | None = None,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 2.0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.win_length = win_length or n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.power = power
        self.f_min = f_min
        self.f_max = float(sample_rate // 2) if f_max is None else f_max
        self.register_buffer("window", torch.empty(self.win_length), persistent=False)
        self.register_buffer("fb", torch.empty(n_fft // 2 + 1, n_mels), persistent=False)
        self.init_derived_buffers()

    def init_derived_buffers(self) -> None:
        """Hann window and mel filterbank, computed from the constructor arguments."""
        if self.window.is_meta:  # built on the meta device: filled in after `to_empty`
            return
        device = self.window.device
        self.window = torch.hann_window(self.win_length, device=device)
        fb = mel_filterbank(
            self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels, self.sample_rate
        )
        self.fb = fb.to(device)

    def frames(self, wave: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Mel frames [start, stop) of a 1-D wave: (n_mels, stop - start), float32.

        Equal to the same columns of a centred STFT over the whole wave: only the
        samples those frames see are transformed, reflect-padded at the true ends.
        """
        n = wave.shape[-1]
        total = num_frames(n, self.hop_length)
        stop = total if stop is None else min(stop, total)
        if not 0 <= start < stop:
            raise ValueError(f"empty frame range [{start}, {stop}) for {n} samples")
        half = self.n_fft // 2
        if n <= half:
            raise ValueError(
                f"a centred STFT with n_fft={self.n_fft} needs more than {half} samples, got {n}"
            )
        lo = (
            start * self.hop_length - half
        )  # first sample of frame `start`, in unpadded coordinates
        hi = (stop - 1) * self.hop_length + self.n_fft - half  # one past the last sample seen
        idx = torch.arange(lo, hi, device=wave.device)
        idx = torch.where(idx < 0, -idx, idx)  # reflect at the start (edge sample not repeated)
        idx = torch.where(idx >= n, 2 * (n - 1) - idx, idx)  # and at the end
        piece = wave[..., idx].float()
        window = self.window
        if self.win_length < self.n_fft:  # torch.stft centres a short window inside n_fft
            offset = (self.n_fft - self.win_length) // 2
            window = F.pad(window, (offset, self.n_fft - self.win_length - offset))
        spec = torch.stft(
            piece, self.n_fft, self.hop_length, window=window, center=False, return_complex=True
        ).abs()
        if self.power != 1.0:
            spec = spec.pow(self.power)
        return (spec.transpose(-1, -2) @ self.fb).transpose(-1, -2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (Tensor): (N,) → (n_mels, 1 + N // hop_length)."""
        return self.frames(wave)


def power_to_db(
    power: torch.Tensor, floor_reference: torch.Tensor, top_db: float = 120.0
) -> torch.Tensor:
    """10·log10(clamp(x, 1e-10)) floored at (10·log10(reference) − top_db).

    `floor_reference` is the clip's maximum power. torchaudio's AmplitudeToDB takes
    that maximum over the whole batch; sonotok takes it per clip, so a clip's features
    never depend on its batch mates (identical at batch size 1).
    """
    db = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
    floor = 10.0 * torch.log10(torch.clamp(floor_reference, min=1e-10)) - top_db
    return torch.maximum(db, floor)
