"""torchaudio.functional.resample for X-ARES, computed with soxr (see __init__.py)."""

from __future__ import annotations

import torch

from sonotok.core.audio import resample as _soxr_resample

__all__ = ["resample"]


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int, **_) -> torch.Tensor:
    """waveform (..., N) at orig_freq → (..., M) at new_freq, M = ceil(N * new / orig)."""
    if int(orig_freq) == int(new_freq):
        return waveform
    x = waveform.detach().cpu().float().numpy()
    out = _soxr_resample(x.reshape(-1, x.shape[-1]), int(orig_freq), int(new_freq))
    out = torch.from_numpy(out).reshape(*x.shape[:-1], out.shape[-1])
    return out.to(device=waveform.device, dtype=waveform.dtype)
