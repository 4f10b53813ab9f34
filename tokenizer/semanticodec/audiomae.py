"""The AudioMAE encoder SemantiCodec's semantic tokens come from (a ViT on Kaldi fbank patches).

A 10.24 s segment (1024 frames × 128 mel bins) is cut into 16 × 16 patches (64 time × 8
frequency, time-major), embedded, given fixed 2-D sin-cos positions and a class token, and run
through `depth` pre-norm Transformer blocks. The feature the reference quantises is not the last
block's output but the mean of the final-norm outputs of every block after `contextual_depth`
(blocks 9–11 of the 12-block ViT-B/16), which is what `forward` returns. Only the encoder is
kept: the MAE decoder in the official checkpoint is never used for tokens.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["AudioMAEEncoder", "sincos_pos_embed"]

PATCH = 16
GRID = (64, 8)  # patches of a 1024 × 128 fbank: 64 in time, 8 in frequency


def sincos_pos_embed(dim: int, grid: tuple[int, int] = GRID) -> torch.Tensor:
    """(1 + H·W, dim) fixed 2-D sin-cos positions with a zero row for the class token, as
    AudioMAE initialises them (the official checkpoint stores the same table)."""

    def one_axis(width: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(width // 2, dtype=float) / (width / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    w_pos, h_pos = np.meshgrid(
        np.arange(grid[1], dtype=np.float32), np.arange(grid[0], dtype=np.float32)
    )
    table = np.concatenate([one_axis(dim // 2, w_pos), one_axis(dim // 2, h_pos)], axis=1)
    table = np.concatenate([np.zeros([1, dim]), table], axis=0)
    return torch.from_numpy(table).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm Transformer block (timm's ViT block, the names the checkpoint uses)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AudioMAEEncoder(nn.Module):
    """fbank segments (B, 1024, 128) → (B, 512, embed_dim) patch features (class token dropped).

    Args: embed_dim, depth, num_heads, mlp_ratio: the ViT; contextual_depth: features average
    the normed outputs of blocks with index > contextual_depth."""

    def __init__(
        self,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        contextual_depth: int = 8,
    ):
        super().__init__()
        self.contextual_depth = contextual_depth
        self.patch_embed = nn.Conv2d(1, embed_dim, kernel_size=PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("pos_embed", torch.zeros(1, 1 + GRID[0] * GRID[1], embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def reset_positions(self) -> None:
        """Fill `pos_embed` with the fixed sin-cos table (fresh models; checkpoints store it)."""
        self.pos_embed.copy_(sincos_pos_embed(self.pos_embed.shape[-1])[None])

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(fbank[:, None]).flatten(2).transpose(1, 2)
        x = x + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index > self.contextual_depth:
                outputs.append(self.norm(x))
        return torch.stack(outputs).mean(dim=0)[:, 1:]
