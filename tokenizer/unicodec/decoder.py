"""UniCodec's decoder: sonotok's Vocos ConvNeXt blocks and ISTFT head, with what UniCodec adds.

The official backbone (WavTokenizer's) puts a small "pos_net" (four GroupNorm ResNet blocks and
one self-attention block over the whole clip) between the input convolution and the ConvNeXt
blocks, and conditions every LayerNorm on an embedding id (AdaLayerNorm). The ids were meant
for EnCodec bandwidths: training draws one of 4 at random (all four are 6.6 kbps in the yaml)
and inference always uses 0, so the decoder does not depend on the domain. The attention makes
the receptive field global: chunked decoding overlaps windows (close to, not equal to, one pass).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..decoder import ConvNeXtBlock, ISTFTHead
from .configs import UnicodecConfig


class AdaLayerNorm(nn.Module):
    """x (Tensor): (B, T, C), ids (B,) or (1,) → LayerNorm(x) · scale[id] + shift[id]."""

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x, (x.shape[-1],), eps=self.eps)
        return x * self.scale(ids)[:, None] + self.shift(ids)[:, None]


class AdaConvNeXtBlock(ConvNeXtBlock):
    """sonotok's ConvNeXt block with its LayerNorm conditioned on an id (see AdaLayerNorm)."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init: float, ids: int):
        super().__init__(dim, intermediate_dim, layer_scale_init)
        self.norm = AdaLayerNorm(ids, dim)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y, ids))))
        return x + y.transpose(1, 2)


def _group_norm(dim: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, dim, eps=1e-6)


class PosNetResBlock(nn.Module):
    """x (Tensor): (B, C, T) → (B, C, T): two (GroupNorm, swish, conv k3) steps + residual."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.norm1 = _group_norm(dim)
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.norm2 = _group_norm(dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return x + h


class PosNetAttention(nn.Module):
    """x (Tensor): (B, C, T) → (B, C, T): one-head self-attention over all frames + residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = _group_norm(dim)
        self.q, self.k, self.v, self.proj_out = (nn.Conv1d(dim, dim, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        weights = torch.bmm(q.permute(0, 2, 1), k) * (q.shape[1] ** -0.5)
        weights = weights.softmax(dim=2)
        return x + self.proj_out(torch.bmm(v, weights.permute(0, 2, 1)))


class UnicodecBackbone(nn.Module):
    """x (Tensor): (B, D_in, T), ids (1,) or (B,) → (B, T, dim)."""

    def __init__(self, config: UnicodecConfig):
        super().__init__()
        dim = config.decoder_dim
        self.embed = nn.Conv1d(config.dimension, dim, kernel_size=7, padding=3)
        self.pos_net = nn.Sequential(
            PosNetResBlock(dim), PosNetResBlock(dim), PosNetAttention(dim),
            PosNetResBlock(dim), PosNetResBlock(dim), _group_norm(dim),
        )  # fmt: skip
        self.norm = AdaLayerNorm(config.adanorm_num_embeddings, dim)
        scale = 1.0 / config.decoder_layers
        self.convnext = nn.ModuleList(
            AdaConvNeXtBlock(
                dim, config.decoder_intermediate_dim, scale, config.adanorm_num_embeddings
            )
            for _ in range(config.decoder_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        for module in [self.embed, *self.convnext.modules()]:  # not pos_net, as the official
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        x = self.pos_net(self.embed(x))
        x = self.norm(x.transpose(1, 2), ids).transpose(1, 2)
        for block in self.convnext:
            x = block(x, ids)
        return self.final_layer_norm(x.transpose(1, 2))


class UnicodecDecoder(nn.Module):
    """code vectors (B, T, D) → waveform (B, T · hop); `ids` as in AdaLayerNorm (default 0,
    the official inference setting)."""

    def __init__(self, config: UnicodecConfig):
        super().__init__()
        self.backbone = UnicodecBackbone(config)
        self.head = ISTFTHead(config.decoder_dim, config.n_fft, config.hop_length)

    def forward(self, latents: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        if ids is None:
            ids = torch.zeros(1, dtype=torch.long, device=latents.device)
        return self.head(self.backbone(latents.transpose(1, 2), ids))
