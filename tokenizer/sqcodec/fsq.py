"""Finite scalar quantization (FSQ) as SQCodec uses it: one code per frame.

A (B, T, D) feature is projected to len(levels) values, each squashed by tanh into
[-(L-1)/2, (L-1)/2] (slightly widened, shifted for even L) and rounded; the code index is the
mixed-radix number of the rounded levels, and the quantized embedding is the rounded values
(scaled to [-1, 1]) projected back to D.

Why our own: the reference subclasses `vector-quantize-pytorch`'s FSQ and overrides its
`quantize`, relying on `FSQ.bound` returning *unrounded* values. From vector-quantize-pytorch
1.22.16 on, `bound` itself rounds and rescales to [-1, 1], so the override rounds a second time:
with an unpinned install every official SQCodec model quantizes to 3 of its 7 (or 9) levels per
dimension, scaled by 1 / (L // 2) — garbled codes and noisy audio. The weights were trained with
the earlier behaviour, which is what this module implements (and the parity fixture checks,
against vector-quantize-pytorch 1.22.15).

Training: with `noise_substitution` on and the module in training mode, each rounded value is
replaced with probability 1/2 by the unrounded one plus uniform noise in [-0.5, 0.5) (the
paper's hybrid quantization); rounding uses a straight-through gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FSQ"]


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient."""
    return z + (z.round() - z).detach()


class FSQ(nn.Module):
    """(B, T, dim) → quantized (B, T, dim), indices (B, T), normalized codes (B, T, len(levels))."""

    def __init__(self, levels: tuple[int, ...], dim: int, noise_substitution: bool = True):
        super().__init__()
        self.levels = tuple(int(level) for level in levels)
        self.noise_substitution = noise_substitution
        width = len(self.levels)
        self.project_in = nn.Linear(dim, width) if dim != width else nn.Identity()
        self.project_out = nn.Linear(width, dim) if dim != width else nn.Identity()

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(levels, mixed-radix basis) as int32, as the reference's buffers."""
        levels = torch.tensor(self.levels, dtype=torch.int32, device=device)
        basis = torch.cumprod(
            torch.tensor([1, *self.levels[:-1]], device=device), dim=0, dtype=torch.int32
        )
        return levels, basis

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash to [-(L-1)/2, (L-1)/2] per dimension (in level units, unrounded)."""
        levels, _ = self._tables(z.device)
        half_l = (levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(…, d) projected features → codes normalized to [-1, 1] (rounded levels / (L // 2))."""
        levels, _ = self._tables(z.device)
        bounded = self.bound(z)
        quantized = round_ste(bounded)
        if self.training and self.noise_substitution:
            noisy = bounded + (torch.rand_like(bounded) - 0.5)
            quantized = torch.where(torch.rand_like(quantized) > 0.5, noisy, quantized)
        return quantized / (levels // 2)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(…, d) normalized codes → (…,) int64 indices (the reference's float arithmetic)."""
        levels, basis = self._tables(codes.device)
        half = levels // 2
        return ((codes * half + half) * basis).sum(dim=-1).to(torch.int32).long()

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(…,) indices → (…, d) normalized codes."""
        levels, basis = self._tables(indices.device)
        half = levels // 2
        return ((indices[..., None] // basis) % levels - half) / half

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, T) indices → (B, T, dim) quantized embeddings (what the decoder consumes)."""
        codes = self.indices_to_codes(indices.long())
        weight = getattr(self.project_out, "weight", None)
        return self.project_out(codes if weight is None else codes.to(weight.dtype))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.project_in(x)
        codes = self.quantize(z.float() if z.dtype not in (torch.float32, torch.float64) else z)
        indices = self.codes_to_indices(codes)
        return self.project_out(codes.to(x.dtype)), indices, codes
