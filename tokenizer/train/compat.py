"""Temporary guard for a gradient bug in `sonotok.tokenizer.decoder.ISTFT` (to be removed
once the decoder is fixed; it then does nothing).

ISTFT divides the whole overlap-added signal by the window envelope and trims afterwards.
The envelope is exactly 0 at the first sample, so the forward pass is right (that sample is
trimmed) but the backward pass computes 0 · (1/0) = NaN for every input. Training needs
gradients, so if a probe shows NaN gradients, the instance's forward is replaced by one
that trims first and divides second — bit-identical outputs, finite gradients.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def _trim_then_divide(self, spec: torch.Tensor) -> torch.Tensor:
    t = spec.shape[-1]
    pad = (self.n_fft - self.hop_length) // 2
    keep = slice(pad, pad + t * self.hop_length)
    frames = torch.fft.irfft(spec, self.n_fft, dim=1) * self.window[None, :, None]
    y = self._overlap_add(frames)[:, keep]
    envelope = self._overlap_add(self.window.square()[None, :, None].expand(1, -1, t))[:, keep]
    return y / envelope


def ensure_finite_istft_gradients(decoder: nn.Module) -> bool:
    """Patch `decoder.head.istft` if its gradients are not finite; True if it was patched."""
    istft = decoder.head.istft
    probe = torch.ones(
        1, istft.n_fft // 2 + 1, 3, dtype=torch.complex64, device=istft.window.device
    )
    probe.requires_grad_(True)
    istft(probe).sum().backward()
    if torch.isfinite(probe.grad).all():
        return False
    istft.forward = types.MethodType(_trim_then_divide, istft)
    return True
