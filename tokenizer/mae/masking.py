"""Random patch masking for masked-autoencoder pretraining (MAE, He et al. 2022; Dasheng).

Each clip keeps a random `1 - ratio` share of its tokens; the encoder sees only those, the
decoder puts them back in place among mask tokens and predicts the rest.
"""

from __future__ import annotations

import torch


def random_masking(
    tokens: torch.Tensor, ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random subset of tokens per clip.

    tokens (Tensor): (B, L, D). Returns kept (B, L_keep, D) with L_keep = int(L·(1 − ratio)),
    mask (B, L) float with 1 where a token was removed, and ids_restore (B, L), the
    permutation that puts [kept, removed] back in the original order.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    b, length, d = tokens.shape
    keep = max(1, int(length * (1 - ratio)))
    noise = torch.rand(b, length, device=tokens.device, generator=generator)
    ids_shuffle = noise.argsort(dim=1)  # smallest noise first: those are kept
    ids_restore = ids_shuffle.argsort(dim=1)
    kept = tokens.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, length, device=tokens.device)
    mask[:, :keep] = 0
    return kept, mask.gather(1, ids_restore), ids_restore
