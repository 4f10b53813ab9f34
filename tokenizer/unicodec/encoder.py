"""UniCodec's encoder: a SEANet convolution stack, then a Transformer with a mixture-of-experts
feed-forward.

The SEANet part is EnCodec's (weight-normalised convolutions with reflect "same" padding plus
the extra right padding that makes the last window full, so N samples give ceil(N / hop)
frames). The Transformer is Mimi's non-causal one (pre-norm, rotary positions on interleaved
pairs, layer scale on attention), whose feed-forward the official code replaced by a
DeepSeek-style mixture of experts: a softmax gate routes each frame to one of `moe_experts`
SwiGLU experts (weighted by its gate score) and a shared SwiGLU expert always adds its output.
Attention is global over the clip, so chunked encoding is close to, not equal to, one pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .configs import UnicodecConfig


def _pad_reflect(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the input is shorter than the padding (it is first
    extended with zeros on the right, and those extra samples are cut again)."""
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


class SConv1d(nn.Module):
    """x (Tensor): (B, C_in, L) → (B, C_out, ceil(L / stride)): weight-normalised Conv1d with
    asymmetric reflect padding (EnCodec's non-causal `SConv1d`)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(c_in, c_out, kernel_size, stride, dilation=dilation))
        self.kernel_size = (kernel_size - 1) * dilation + 1  # effective, with dilation
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        total = k - s
        length = x.shape[-1]
        frames = (length - k + total) / s + 1  # as EnCodec computes it (float)
        extra = (math.ceil(frames) - 1) * s + (k - total) - length
        right = total // 2
        return self.conv(_pad_reflect(x, total - right, right + extra))


class SEANetResBlock(nn.Module):
    """x (Tensor): (B, C, L) → (B, C, L): ELU, conv k3 (to C / compress), ELU, conv k1, plus a
    1×1 convolution shortcut."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, compress: int):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(), SConv1d(dim, hidden, kernel_size, dilation=dilation),
            nn.ELU(), SConv1d(hidden, dim, 1),
        )  # fmt: skip
        self.shortcut = SConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


def seanet_layers(config: UnicodecConfig) -> list[nn.Module]:
    """The SEANet encoder's layers in the official order (its checkpoint indexes them)."""
    n = config.n_filters
    layers: list[nn.Module] = [SConv1d(1, n, config.kernel_size)]
    for ratio in reversed(config.ratios):
        for j in range(config.n_residual_layers):
            layers.append(
                SEANetResBlock(
                    n, config.residual_kernel_size, config.dilation_base**j, config.compress
                )
            )
        layers += [nn.ELU(), SConv1d(n, 2 * n, 2 * ratio, stride=ratio)]
        n *= 2
    layers += [nn.ELU(), SConv1d(n, config.dimension, config.last_kernel_size)]
    return layers


def apply_rope(q: torch.Tensor, k: torch.Tensor, max_period: float) -> tuple[torch.Tensor, ...]:
    """Rotary embedding on interleaved (real, imaginary) pairs; q, k: (B, H, T, D)."""
    t, d = q.shape[-2], q.shape[-1]
    freqs = torch.exp(
        torch.arange(d // 2, device=q.device, dtype=torch.float32) * (-math.log(max_period) * 2 / d)
    )
    angle = freqs * torch.arange(t, device=q.device, dtype=torch.float32).view(-1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)

    def rotate(x: torch.Tensor) -> torch.Tensor:
        pairs = x.view(*x.shape[:-1], d // 2, 2)
        re, im = pairs[..., 0].float(), pairs[..., 1].float()
        out = torch.stack(
            [(re * cos - im * sin).to(x.dtype), (re * sin + im * cos).to(x.dtype)], -1
        )
        return out.view(x.shape)

    return rotate(q), rotate(k)


class SelfAttention(nn.Module):
    """x (Tensor): (B, T, C) → (B, T, C): bias-free multi-head attention over the whole clip."""

    def __init__(self, dim: int, heads: int, max_period: float):
        super().__init__()
        self.heads, self.max_period = heads, max_period
        self.in_proj = nn.Linear(dim, 3 * dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.in_proj(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, k, self.max_period)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, c))


class SwiGLU(nn.Module):
    """x (Tensor): (N, C) → (N, C): w2(silu(w1 x) · w3 x), no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MixtureOfExperts(nn.Module):
    """x (Tensor): (B, T, C) → (B, T, C): top-1 routed SwiGLU expert (scaled by its softmax
    gate score) plus an always-on shared expert."""

    def __init__(self, dim: int, hidden: int, experts: int):
        super().__init__()
        self.gate = nn.Parameter(torch.empty(experts, dim))
        self.experts = nn.ModuleList(SwiGLU(dim, hidden) for _ in range(experts))
        self.shared = SwiGLU(dim, hidden)
        nn.init.normal_(self.gate, std=dim**-0.5)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C) → (gate weight (N, 1), expert index (N, 1)); exposed for balance losses."""
        scores = F.linear(x, self.gate).softmax(dim=-1, dtype=torch.float32)
        index = scores.topk(1, dim=-1).indices
        return scores.gather(1, index).type_as(x), index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weight, index = self.route(x)
        y = torch.zeros_like(x)
        for i, expert in enumerate(self.experts):
            rows = torch.nonzero(index[:, 0] == i)[:, 0]
            if rows.numel():
                y[rows] += expert(x[rows]) * weight[rows]
        return (y + self.shared(x)).view(shape)


class TransformerLayer(nn.Module):
    """x (Tensor): (B, T, C) → (B, T, C): x + s·attn(LN x), then x + MoE(LN x)."""

    def __init__(self, config: UnicodecConfig):
        super().__init__()
        dim = config.dimension
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = SelfAttention(dim, config.transformer_heads, config.rope_max_period)
        self.attn_scale = nn.Parameter(torch.full((dim,), config.layer_scale))
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.moe = MixtureOfExperts(dim, config.moe_hidden, config.moe_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_scale * self.attn(self.norm1(x))
        return x + self.moe(self.norm2(x))


class UnicodecEncoder(nn.Module):
    """wave (Tensor): (B, N) → features (B, ceil(N / hop), dimension), before quantization.

    `mask_emb` is the learned vector the semantic (mask-prediction) training stage writes over
    masked frames; inference never uses it.
    """

    def __init__(self, config: UnicodecConfig):
        super().__init__()
        self.seanet = nn.Sequential(*seanet_layers(config))
        self.layers = nn.ModuleList(
            TransformerLayer(config) for _ in range(config.transformer_layers)
        )
        self.mask_emb = nn.Parameter(torch.rand(config.dimension))

    def convolutions(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, T, C): the SEANet features (the mask-prediction stage's targets)."""
        return self.seanet(wave[:, None]).transpose(1, 2)

    def transformer(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.convolutions(wave))
