"""SQCodec's causal local-attention Transformer (between the conv encoder and the quantizer, and
between the quantizer and the conv decoder). Shapes: (B, T, D) unless a docstring says otherwise.

The sequence is cut into blocks of `window` frames; a frame attends to every frame of the
previous block and to the frames of its own block up to itself (the `local-attention` package's
causal mode with look-back 1 and `exact_windowsize=False`). Positions enter as a learned bias
on |i − j| (a small MLP, "dynamic position bias"). So a frame's output depends only on frames in
its own and the `depth` previous blocks — what makes chunked encoding exact when chunks start
on block boundaries. Attribute names mirror the official state dicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv1d

HEADS = 6  # the reference's LocalTrans.builder: 6 heads of feature_dim // 4
GROUP_FRAMES = 8192  # query frames whose attention scores are held at once


class DynamicPositionBias(nn.Module):
    """MLP(distance) → one bias per head; `forward(w)` gives the (H, w, 2w) block bias for
    queries of a block against keys of the previous and the current block."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, heads)
        )

    def forward(self, window: int) -> torch.Tensor:
        device = self.mlp[0].weight.device
        dist = torch.arange(2 * window, device=device).to(self.mlp[0].weight.dtype)
        bias = self.mlp(dist[:, None])  # (2w, H)
        i = torch.arange(window, 2 * window, device=device)
        j = torch.arange(2 * window, device=device)
        return bias[(i[:, None] - j[None, :]).abs()].permute(2, 0, 1)


class LocalSelfAttention(nn.Module):
    """Pre-norm causal block-local multi-head self-attention (no output bias)."""

    def __init__(self, dim: int, window: int, heads: int = HEADS):
        super().__init__()
        self.heads, self.window, self.head_dim = heads, window, dim // 4
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * self.head_dim, bias=False)
        self.to_out = nn.Linear(heads * self.head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D); mask (H, w, 2w) from `block_mask` → (B, T, D)."""
        b, n, _ = x.shape
        w, h, d = self.window, self.heads, self.head_dim
        qkv = self.to_qkv(self.norm(x))
        blocks = -(-n // w)
        qkv = F.pad(qkv, (0, 0, 0, blocks * w - n))  # zero keys past the end: all in the future
        q, k, v = qkv.view(b, blocks, w, 3, h, d).permute(3, 0, 4, 1, 2, 5)  # (B, H, W, w, d)
        k = torch.cat([F.pad(k, (0, 0, 0, 0, 1, 0))[:, :, :-1], k], dim=3)  # (B, H, W, 2w, d)
        v = torch.cat([F.pad(v, (0, 0, 0, 0, 1, 0))[:, :, :-1], v], dim=3)
        # q scaled before the product, then softmax(q·kᵀ + mask)·v: the reference's order of
        # float operations, so outputs match it to the last bit rather than to ~1e-6. Blocks are
        # independent: a group at a time bounds the (…, w, 2w) score memory on long inputs.
        step, parts = max(1, GROUP_FRAMES // w), []
        for s in range(0, blocks, step):
            sim = torch.matmul(q[:, :, s : s + step] * d**-0.5, k[:, :, s : s + step].mT)
            sim = sim + mask[:, None]
            if s == 0:
                sim[:, :, 0, :, :w] = float("-inf")  # the first block has no previous block
            parts.append(torch.matmul(sim.softmax(dim=-1), v[:, :, s : s + step]))
        out = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
        out = out.permute(0, 2, 3, 1, 4).reshape(b, blocks * w, h * d)[:, :n]
        return self.to_out(out)


def block_mask(bias: torch.Tensor) -> torch.Tensor:
    """(H, w, 2w) position bias → the additive attention mask: the bias, and −inf on keys in
    the query's future (keys are the previous block, then the query's own block)."""
    w = bias.shape[-2]
    q = torch.arange(w, device=bias.device)[:, None]
    k = torch.arange(2 * w, device=bias.device)[None, :]
    return bias.masked_fill(k - w > q, float("-inf"))


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return x * F.gelu(gate)


def feed_forward(dim: int, mult: int = 4, dropout: float = 0.0) -> nn.Sequential:
    """Pre-norm GEGLU MLP (inner width dim · mult · 2/3, no biases)."""
    inner = int(dim * mult * 2 / 3)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, 2 * inner, bias=False),
        GEGLU(),
        nn.Dropout(dropout),
        nn.Linear(inner, dim, bias=False),
    )


class LocalTransformer(nn.Module):
    """`depth` × (local attention + GEGLU MLP), residual; one position bias for all layers."""

    def __init__(self, dim: int, depth: int, window: int):
        super().__init__()
        self.window = window
        self.layers = nn.ModuleList(
            nn.ModuleList([LocalSelfAttention(dim, window), feed_forward(dim)])
            for _ in range(depth)
        )
        self.dynamic_pos_bias = DynamicPositionBias(dim // 2, HEADS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = block_mask(self.dynamic_pos_bias(self.window))
        for attn, ff in self.layers:
            x = attn(x, mask) + x
            x = ff(x) + x
        return x


class LocalEncoder(nn.Module):
    """(B, D, T) conv features → (B, T, D)."""

    def __init__(self, dim: int, depth: int, window: int):
        super().__init__()
        self.local_trans = LocalTransformer(dim, depth, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_trans(x.transpose(1, 2))


class LocalDecoder(nn.Module):
    """(B, T, D) quantized embeddings → (B, D, T)."""

    def __init__(self, dim: int, depth: int, window: int):
        super().__init__()
        self.local_trans = LocalTransformer(dim, depth, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_trans(x).transpose(1, 2)


class DownTrans(nn.Module):
    """Two Transformer layers at the conv rate, then a strided conv by `rate`. (B, T·r, D) →
    (B, T, D)."""

    def __init__(self, dim: int, window: int, rate: int):
        super().__init__()
        self.trans = LocalTransformer(dim, 2, window)
        self.down_layer = conv1d(dim, dim, rate, stride=rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_layer(self.trans(x).transpose(1, 2)).transpose(1, 2)


class UpTrans(nn.Module):
    """Linear interpolation by `rate`, then two Transformer layers. (B, T, D) → (B, T·r, D)."""

    def __init__(self, dim: int, window: int, rate: int):
        super().__init__()
        self.rate = rate
        self.trans = LocalTransformer(dim, 2, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(
            x.transpose(1, 2), scale_factor=self.rate, mode="linear", align_corners=False
        )
        return self.trans(x.transpose(1, 2))


class CompressedLocalEncoder(nn.Module):
    """The 0.75 and 1.5 kbps encoder Transformer: also lowers the frame rate by `rate`.

    (B, D, T·r) → (B, T, D). `cache_token` is the reference's (here always empty) cache of
    learned tokens per block, kept so official state dicts load strictly."""

    def __init__(self, dim: int, depth: int, window: int, rate: int):
        super().__init__()
        self.cache_token = nn.Parameter(torch.zeros(1, 0, dim))
        self.down_trans = DownTrans(dim, window * rate, rate)
        self.local_trans = LocalTransformer(dim, depth - 2, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_trans(self.down_trans(x.transpose(1, 2)))


class CompressedLocalDecoder(nn.Module):
    """(B, T, D) → (B, D, T·r): Transformer at the code rate, then `UpTrans`."""

    def __init__(self, dim: int, depth: int, window: int, rate: int):
        super().__init__()
        self.up_trans = UpTrans(dim, window * rate, rate)
        self.local_trans = LocalTransformer(dim, depth - 2, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_trans(self.local_trans(x)).transpose(1, 2)
