"""The MAE reconstruction loss on masked patches (Dasheng's MAELoss with norm_pix_loss)."""

from __future__ import annotations

import torch


def patchify(mel: torch.Tensor, patch_frames: int) -> torch.Tensor:
    """mel (Tensor): (B, F, T) → (B, T // p, F·p) patches, mel-bin-major inside a patch
    (the layout of `nn.Unfold` with kernel (F, p) used by Dasheng)."""
    b, f, t = mel.shape
    n = t // patch_frames
    patches = mel[..., : n * patch_frames].reshape(b, f, n, patch_frames)
    return patches.permute(0, 2, 1, 3).reshape(b, n, f * patch_frames)


def mae_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = True
) -> torch.Tensor:
    """Mean squared error over removed patches only.

    pred, target (Tensor): (B, L, P); mask (Tensor): (B, L), 1 = removed. With `norm_pix`
    each target patch is standardised (its own mean and variance, eps 1e-6 as in MAE), so
    the model learns spectral shape rather than loudness.
    """
    pred, target = pred.float(), target.float()
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)
