"""The Kaldi 128-bin log-mel filter bank SemantiCodec's AudioMAE reads, in plain torch.

The reference computes `torchaudio.compliance.kaldi.fbank(htk_compat=True, window_type="hanning",
num_mel_bins=128, dither=0, frame_shift=10, use_energy=False)` on the mean-removed 16 kHz wave and
normalises it with AudioSet's statistics. sonotok has no torchaudio dependency: the shared
`sonotok.tokenizer.kaldi_fbank` computes it (25 ms frames every 10 ms without edge padding,
per-frame DC removal, 0.97 pre-emphasis, symmetric Hann window, 512-point power spectrum,
Kaldi's triangular mel bins from 20 Hz to Nyquist, log floored at float32 epsilon). The parity fixture checks it
against torchaudio within 1e-4.
"""

from __future__ import annotations

import torch

from ..kaldi_fbank import kaldi_fbank as shared_fbank

__all__ = [
    "FRAME_LENGTH",
    "FRAME_SHIFT",
    "NORM_MEAN",
    "NORM_STD",
    "kaldi_fbank",
    "normalise",
]

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms at 16 kHz (Kaldi's default frame length)
FRAME_SHIFT = 160  # 10 ms (the reference's frame_shift=10)
NUM_MEL_BINS = 128
LOW_FREQ = 20.0  # Kaldi's default low_freq
PREEMPHASIS = 0.97
NORM_MEAN = -4.2677393  # AudioSet fbank statistics used by the reference (utils.py)
NORM_STD = 4.5689974


def kaldi_fbank(wave: torch.Tensor) -> torch.Tensor:
    """(..., N) float wave at 16 kHz → (..., frames, 128) log mel energies, frames =
    1 + (N - 400) // 160 (0 frames when N < 400), as torchaudio's Kaldi fbank with the
    reference's options."""
    return shared_fbank(
        wave,
        SAMPLE_RATE,
        num_mel_bins=NUM_MEL_BINS,
        frame_length=FRAME_LENGTH,
        frame_shift=FRAME_SHIFT,
        low_freq=LOW_FREQ,
        preemphasis=PREEMPHASIS,
        window_type="hanning",
    )


def normalise(fbank: torch.Tensor) -> torch.Tensor:
    """The reference's AudioSet normalisation: (fbank − mean) / (2 · std)."""
    return (fbank - NORM_MEAN) / (NORM_STD * 2)
