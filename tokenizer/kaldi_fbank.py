"""Kaldi-style log mel filterbanks, batched, in plain torch (no torchaudio).

`torchaudio.compliance.kaldi.fbank` (pre-emphasis, DC removal, snip_edges, power spectrum, no
dither) feeds X-Codec 2's and NeuCodec's w2v-BERT (povey window, 80 bins) and SemantiCodec's
AudioMAE (hanning window, 128 bins). sonotok does not depend on torchaudio, and that function
takes one clip at a time; this computes the same numbers for (..., N) waves of equal length
(the X-Codec 2 and SemantiCodec parity fixtures check them against torchaudio's output).
"""

from __future__ import annotations

import functools
import math

import torch

POVEY_POWER = 0.85  # Kaldi's "povey" window: a Hann window raised to 0.85
MEL_BREAK, MEL_SCALE = 700.0, 1127.0  # Kaldi's mel scale: 1127 ln(1 + f / 700)


def _mel(freq):
    """Hz → Kaldi mel (a float or a tensor)."""
    if isinstance(freq, torch.Tensor):
        return MEL_SCALE * (1.0 + freq / MEL_BREAK).log()
    return MEL_SCALE * math.log(1.0 + freq / MEL_BREAK)


@functools.lru_cache(maxsize=8)
def mel_banks(
    num_bins: int, n_fft: int, sample_rate: int, low_freq: float, high_freq: float
) -> torch.Tensor:
    """(num_bins, n_fft // 2 + 1) triangular filters, equally spaced on the mel scale between
    low_freq and high_freq (Hz); the Nyquist bin gets no weight, as in Kaldi. Cached: callers
    must not modify the tensor."""
    low, high = _mel(low_freq), _mel(high_freq)
    step = (high - low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    left, centre, right = (low + (index + k) * step for k in (0, 1.0, 2.0))
    fft_mel = _mel(sample_rate / n_fft * torch.arange(n_fft / 2)).unsqueeze(0)
    rising = (fft_mel - left) / (centre - left)
    falling = (right - fft_mel) / (right - centre)
    banks = torch.minimum(rising, falling).clamp_min(0.0)
    return torch.nn.functional.pad(banks, (0, 1))


def kaldi_fbank(
    waves: torch.Tensor,
    sample_rate: int,
    num_mel_bins: int = 80,
    frame_length: int = 400,
    frame_shift: int = 160,
    low_freq: float = 20.0,
    preemphasis: float = 0.97,
    window_type: str = "povey",
) -> torch.Tensor:
    """waves (..., N) → (..., F, num_mel_bins) log mel energies, F = 1 + (N - window) // shift
    (0 when N < window). `frame_length` / `frame_shift` are in samples; like the callers in
    transformers they pass through milliseconds, so the window is Kaldi's integer rounding.
    `window_type`: "povey" (Kaldi's default) or "hanning"."""
    window = int(sample_rate * (frame_length / sample_rate * 1000) * 0.001)
    shift = int(sample_rate * (frame_shift / sample_rate * 1000) * 0.001)
    dtype, device = waves.dtype, waves.device
    if waves.shape[-1] < window:
        return waves.new_zeros(*waves.shape[:-1], 0, num_mel_bins)
    frames = waves.unfold(-1, window, shift)  # (..., F, window)
    frames = frames - frames.mean(-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = frames - preemphasis * previous
    taper = torch.hann_window(window, periodic=False, dtype=dtype, device=device)
    if window_type not in ("povey", "hanning"):
        raise ValueError(f"window_type {window_type!r}: use 'povey' or 'hanning'")
    frames = frames * (taper.pow(POVEY_POWER) if window_type == "povey" else taper)
    n_fft = 1 if window == 0 else 2 ** (window - 1).bit_length()
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2.0)
    banks = mel_banks(num_mel_bins, n_fft, sample_rate, low_freq, sample_rate // 2)
    energies = power @ banks.to(device=device, dtype=dtype).T
    return energies.clamp_min(torch.finfo(dtype).eps).log()
