"""Validation distances for reconstructions, in the style of the DAC toolkit's metrics:
multi-scale L1 between log10 magnitudes of STFTs (windows 2048, 512) and of mel
spectrograms (windows 32 … 2048 with 5 … 320 mels); PESQ / STOI on speech when the `pesq`
/ `pystoi` packages are installed."""

from __future__ import annotations

import numpy as np
import torch

from ..mel import MelSpectrogram

STFT_WINDOWS = (2048, 512)
MEL_SCALES = ((32, 5), (64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320))
EPS = 1e-5


def _log_mag(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    spec = torch.stft(
        x, n_fft, n_fft // 4, window=torch.hann_window(n_fft, device=x.device), return_complex=True
    )
    return torch.log10(torch.clamp(spec.abs(), min=EPS))


@torch.no_grad()
def stft_distance(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Mean over windows of L1(log10 |STFT|); (B, N) each."""
    return float(
        np.mean(
            [
                (_log_mag(reference, n) - _log_mag(estimate, n)).abs().mean().item()
                for n in STFT_WINDOWS
            ]
        )
    )


@torch.no_grad()
def mel_distance(
    reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 16000
) -> float:
    """Mean over scales of L1(log10 mel magnitude); (B, N) each."""
    values = []
    for n_fft, n_mels in MEL_SCALES:
        mel = MelSpectrogram(
            sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels, power=1.0
        ).to(reference.device)
        a, b = (torch.log10(torch.clamp(mel(x), min=EPS)) for x in (reference, estimate))
        values.append((a - b).abs().mean().item())
    return float(np.mean(values))


def speech_scores(
    reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 16000
) -> dict[str, float]:
    """Mean wideband PESQ and STOI over the batch; metrics whose package is missing (or that
    fail on a clip, e.g. PESQ on silence) are left out."""
    ref, est = reference.float().cpu().numpy(), estimate.float().cpu().numpy()
    out: dict[str, float] = {}
    try:
        from pesq import pesq

        scores = []
        for r, e in zip(ref, est):
            try:
                scores.append(pesq(sample_rate, r, e, "wb"))
            except Exception:  # pesq raises on clips without speech; skip those
                continue
        if scores:
            out["pesq"] = float(np.mean(scores))
    except ImportError:
        pass
    try:
        from pystoi import stoi

        out["stoi"] = float(
            np.mean([stoi(r, e, sample_rate, extended=False) for r, e in zip(ref, est)])
        )
    except ImportError:
        pass
    return out
