"""The SQCodec network: conv encoder → causal local Transformer → FSQ → local Transformer →
conv decoder. Pure modules; no I/O, no training loop.

`SQCodecModel.forward(wave)` is the training path (reconstruction, codes, aux); the inference
pieces (`pad`, `encode_features`, `quantizer`, `decode_features`) are what the tokenizer family
composes. The five submodules are the official release's five weight files (`MODULES`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import CompressedLocalDecoder, CompressedLocalEncoder, LocalDecoder, LocalEncoder
from .configs import SQCodecConfig
from .fsq import FSQ
from .layers import (
    ChannelNorm,
    ConvNeXtUnit,
    DacUnit,
    EnhanceGate,
    Residual,
    Snake,
    TConvInput,
    conv1d,
)

__all__ = ["MODULES", "Decoder", "Encoder", "SQCodecModel"]

#: The official per-module weight files, `weights/<config>.v0/<module>.pt`.
MODULES = ("encoder", "quantizer", "decoder", "en_encoder", "en_decoder")


def _stage(dim: int, depth: int, config: SQCodecConfig) -> nn.Sequential:
    return nn.Sequential(
        *[Residual(ConvNeXtUnit(dim, config.use_snake, config.use_norm)) for _ in range(depth)]
    )


def _norm(dim: int, config: SQCodecConfig) -> nn.Module:
    return ChannelNorm(dim, channels_last=False) if config.use_norm else nn.Identity()


class Encoder(nn.Module):
    """(B, 1, N) wave → (B, feature_dim, N / conv_hop): TConv input layer, ConvNeXt stages with
    strided-conv downsampling, a k=3 output conv."""

    def __init__(self, config: SQCodecConfig):
        super().__init__()
        dims, depths = config.encoder_dims, config.encoder_depths
        blocks: list[nn.Module] = [TConvInput(dims[0])]
        for i, stride in enumerate(config.compress_rates):
            down = nn.Sequential(
                conv1d(dims[i], dims[i + 1], stride, stride=stride), _norm(dims[i + 1], config)
            )
            blocks += [_stage(dims[i], depths[i], config), down]
        blocks += [
            _stage(dims[-1], depths[-1], config),
            conv1d(dims[-1], config.feature_dim, 3, padding=1),
        ]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class OutputBlock(nn.Module):
    """The decoder tail: residual units, Snake, conv to one channel, tanh. (B, C, N) → (B, 1, N)."""

    def __init__(self, dim: int, config: SQCodecConfig):
        super().__init__()
        if config.decoder_last_layer == "legacy":
            units = [Residual(DacUnit(dim, d)) for d in (1, 3, 9)]
        elif config.decoder_last_layer == "dilation":
            units = [
                Residual(ConvNeXtUnit(dim, config.use_snake, config.use_norm, d)) for d in (1, 3, 9)
            ]
        else:
            units = [
                Residual(ConvNeXtUnit(dim, config.use_snake, config.use_norm)) for _ in range(2)
            ]
        self.block = nn.Sequential(
            nn.Sequential(*units), Snake(dim), conv1d(dim, 1, 7, padding=3), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Decoder(nn.Module):
    """(B, feature_dim, T) → (B, 1, T · conv_hop): k=3 input conv, per stage ConvNeXt units, an
    `EnhanceGate` and 1×1 conv + linear upsampling, then `OutputBlock`."""

    def __init__(self, config: SQCodecConfig):
        super().__init__()
        dims, depths = config.decoder_dims, config.decoder_depths
        blocks: list[nn.Module] = [conv1d(config.feature_dim, dims[0], 3, padding=1)]
        for i, stride in enumerate(config.decode_rates):
            up = nn.Sequential(
                conv1d(dims[i], dims[i + 1], 1),
                nn.Upsample(scale_factor=stride, mode="linear", align_corners=False),
                _norm(dims[i + 1], config),
            )
            blocks += [_stage(dims[i], depths[i], config), EnhanceGate(dims[i]), up]
        blocks.append(OutputBlock(dims[-1], config))
        self.blocks = nn.Sequential(*blocks)

    @property
    def gates(self) -> list[int]:
        """Positions in `blocks` of the `EnhanceGate`s (the only clip-global operations)."""
        return [i for i, b in enumerate(self.blocks) if isinstance(b, EnhanceGate)]

    def forward(self, x: torch.Tensor, stats: dict | None = None, stop: int | None = None):
        """With `stats` ({gate position: (mean, var)}) the gates use those statistics; with
        `stop`, return the input of block `stop` instead of the audio."""
        for i, block in enumerate(self.blocks):
            if i == stop:
                return x
            if isinstance(block, EnhanceGate):
                x = block(x, None if stats is None else stats.get(i))
            else:
                x = block(x)
        return x


class SQCodecModel(nn.Module):
    """The whole codec for one `SQCodecConfig`; submodules named as the official files."""

    def __init__(self, config: SQCodecConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = Encoder(c)
        self.quantizer = FSQ(c.levels, c.feature_dim)
        self.decoder = Decoder(c)
        if c.transformer_compress == 1:
            self.en_encoder = LocalEncoder(c.feature_dim, c.transformer_depth, c.transformer_window)
            self.en_decoder = LocalDecoder(c.feature_dim, c.transformer_depth, c.transformer_window)
        else:
            args = (
                c.feature_dim,
                c.transformer_depth,
                c.transformer_window,
                c.transformer_compress,
            )
            self.en_encoder = CompressedLocalEncoder(*args)
            self.en_decoder = CompressedLocalDecoder(*args)

    def pad(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, N') zero-padded to a multiple of hop × window, as the reference does."""
        fill = self.config.fill_length
        return nn.functional.pad(
            wave, (0, math.ceil(wave.shape[-1] / fill) * fill - wave.shape[-1])
        )

    def encode_features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) padded wave → (B, N / hop, feature_dim) pre-quantization features."""
        return self.en_encoder(self.encoder(wave[:, None]))

    def decode_features(self, latents: torch.Tensor, stats: dict | None = None) -> torch.Tensor:
        """(B, T, feature_dim) quantized embeddings → (B, T · hop) audio."""
        return self.decoder(self.en_decoder(latents), stats)[:, 0]

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The training path: (B, N) wave → (reconstruction (B, N), codes (B, T), aux).

        aux: "latents" (B, T, D) quantized embeddings, "features" (B, T, D) pre-quantization,
        "fsq" (B, T, len(levels)) normalized codes. The FSQ noise substitution is on in
        training mode (`quantizer.noise_substitution`)."""
        n = wave.shape[-1]
        features = self.encode_features(self.pad(wave))
        latents, codes, fsq = self.quantizer(features)
        audio = self.decode_features(latents)[:, :n]
        return audio, codes, {"latents": latents, "features": features, "fsq": fsq}
