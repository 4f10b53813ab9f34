"""SQCodec's convolutional building blocks (shapes: (B, C, T) unless a docstring says otherwise).

Attribute names and `nn.Sequential` positions mirror the official state dicts, so official
per-module `.pt` files load without a key map. Convolutions and linear layers carry weight
normalisation (`torch.nn.utils.parametrizations.weight_norm`) as in the reference, so a trainer
gets the same parametrisation the official weights were trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

EPS = torch.finfo(torch.float32).eps  # the reference's xnn.EPS (float32 machine epsilon)


def _init(layer: nn.Module) -> nn.Module:
    """Truncated-normal weights (std 0.02), zero bias, then weight norm — the reference's init."""
    nn.init.trunc_normal_(layer.weight, std=0.02)
    nn.init.zeros_(layer.bias)
    return weight_norm(layer)


def conv1d(*args, **kwargs) -> nn.Module:
    """A weight-normalised `nn.Conv1d`."""
    return _init(nn.Conv1d(*args, **kwargs))


def linear(*args, **kwargs) -> nn.Module:
    """A weight-normalised `nn.Linear`."""
    return _init(nn.Linear(*args, **kwargs))


class Snake(nn.Module):
    """x + sin²(αx)/(α + eps), one α per channel (channels on dim 1, or last if `channels_last`)."""

    def __init__(self, channels: int, channels_last: bool = False):
        super().__init__()
        shape = (1, 1, channels) if channels_last else (1, channels, 1)
        self.alpha = nn.Parameter(torch.ones(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + EPS).reciprocal() * torch.sin(self.alpha * x).pow(2)


class ChannelNorm(nn.Module):
    """LayerNorm over channels, for (B, C, T) (`channels_last=False`) or (B, T, C) inputs."""

    def __init__(self, channels: int, channels_last: bool = True):
        super().__init__()
        self.channels, self.channels_last = channels, channels_last
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return F.layer_norm(x, (self.channels,), self.weight, self.bias, EPS)
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + EPS)
        return self.weight[:, None] * x + self.bias[:, None]


class GRN(nn.Module):
    """The reference's global response normalisation on (B, T, C).

    It divides the whole clip's L2 norm by its own mean over the last axis of a (B, 1, 1)
    tensor — i.e. by itself — so the factor is g / (g + eps) ≈ 1: the layer is, up to float
    rounding, gamma · x + beta + x. Kept literally so official weights behave identically."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, channels))
        self.beta = nn.Parameter(torch.zeros(1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.norm(x, p=2, dim=[1, 2], keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + EPS)
        return self.gamma * (x * n) + self.beta + x


class Residual(nn.Module):
    """x + module(x), with stochastic depth (`drop_prob`) while training."""

    def __init__(self, module: nn.Module, drop_prob: float = 0.0):
        super().__init__()
        self.module, self.drop_prob = module, drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x)
        if self.training and self.drop_prob > 0:
            keep = 1 - self.drop_prob
            y = y * y.new_empty((y.shape[0],) + (1,) * (y.dim() - 1)).bernoulli_(keep) / keep
        return x + y


class ConvNeXtUnit(nn.Module):
    """Depth-wise conv → LayerNorm → 4× point-wise MLP with Snake and GRN (ConvNeXt-V2 style)."""

    def __init__(self, dim: int, snake: bool = True, norm: bool = True, dilation: int = 1):
        super().__init__()
        pad = 6 * dilation // 2
        self.dw_conv = conv1d(dim, dim, 7, dilation=dilation, padding=pad, groups=dim)
        self.norm = ChannelNorm(dim) if norm else nn.Identity()
        self.pw_conv1 = linear(dim, 4 * dim)
        self.act = Snake(4 * dim, channels_last=True) if snake else nn.GELU()
        self.grn = GRN(4 * dim)
        self.pw_conv2 = linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(x).transpose(1, 2)
        x = self.pw_conv2(self.grn(self.act(self.pw_conv1(self.norm(x)))))
        return x.transpose(1, 2)


class DacUnit(nn.Module):
    """DAC's residual unit: Snake → dilated conv (k 7) → Snake → 1×1 conv (the "legacy" tail)."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            Snake(dim),
            conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation),
            Snake(dim),
            conv1d(dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def trend_pool(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """avgpool(maxpool(|x|, k), k), stride 1, same length: the local amplitude envelope."""
    if kernel == 1:
        return x
    return F.avg_pool1d(F.max_pool1d(x.abs(), kernel, 1, kernel // 2), kernel, 1, kernel // 2)


class TrendPool(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return trend_pool(x, self.kernel)


class TrendBranches(nn.Module):
    """One (B, 1, T) signal → per pooling size k: trend_pool(x, k) → conv; concatenated.

    (B, 1, T) → (B, width · len(pools), T); conv dilation is k // dilation_rate + 1."""

    def __init__(self, width: int, pools: tuple[int, ...], dilation_rate: int):
        super().__init__()
        self.blocks = nn.ModuleList()
        for pool in pools:
            dilation = pool // dilation_rate + 1
            self.blocks.append(
                nn.Sequential(
                    TrendPool(pool),
                    conv1d(1, width, 7, dilation=dilation, padding=6 * dilation // 2),
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([block(x) for block in self.blocks], dim=1)


class TConvInput(TrendBranches):
    """The encoder's first layer ("TConv"): trend branches at pools 1, 5, 11, 21, 45 (4 channels
    each), a 1×1 MLP with GELU, the raw wave appended, and a 1×1 projection. (B, 1, N) → (B, C, N)."""

    POOLS = (1, 5, 11, 21, 45)  # the reference's V3FirstBlock ("fv36") settings

    def __init__(self, dim: int):
        super().__init__(4, self.POOLS, dilation_rate=99)
        hidden = 4 * len(self.POOLS)
        self.conv_1 = conv1d(hidden, 4 * hidden, 1)
        self.act = nn.GELU()
        self.conv_2 = conv1d(4 * hidden + 1, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv_1(super().forward(x)))
        return self.conv_2(torch.cat([h, x], dim=1))


class InstanceStats(nn.Module):
    """`nn.InstanceNorm1d(affine=True)` whose statistics can be supplied from outside.

    Given `stats=(mean, var)` (each (B, C, 1)), it normalises with those instead of the
    clip's own: chunked decoding passes the whole clip's statistics so it equals one pass."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, stats=None) -> torch.Tensor:
        if stats is None and x.shape[-1] > 1:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        if stats is None:  # one frame: torch refuses it; the statistics are (x, 0)
            stats = (x, torch.zeros_like(x))
        mean, var = stats
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None] + self.bias[:, None]


class EnhanceGate(TrendBranches):
    """The decoder's gate before each upsampling: trend features of channel 0 (pools 1, 3, 5, 9),
    instance-normalised over the clip, mapped to one gain per channel: x + x · g. (B, C, T)."""

    POOLS = (1, 3, 5, 9)  # the reference's SimpleEnhanceBlock settings

    def __init__(self, dim: int):
        super().__init__(1, self.POOLS, dilation_rate=2)
        self.merge_layer = nn.Sequential(InstanceStats(4), nn.Conv1d(4, dim, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, 4, T) trend features whose clip statistics the instance norm uses."""
        return super().forward(x[:, :1])

    def forward(self, x: torch.Tensor, stats=None) -> torch.Tensor:
        y = self.merge_layer[0](self.features(x), stats)
        return x + self.merge_layer[1](y) * x
