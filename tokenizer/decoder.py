"""Vocos decoder: ConvNeXt backbone + ISTFT head with "same" padding.

Vocos (gemelo-ai/vocos) predicts a complex STFT frame per input frame and inverts
it; DashengTokenizer scales it to 1280 channels × 12 blocks on 50 Hz frames
(n_fft 1280, hop 320 → 16 kHz).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VocosDecoderConfig:
    input_dim: int = 1280
    dim: int = 1280  # DashengTokenizer `decoder_embed_dim`
    intermediate_dim: int = 5120  # `decoder_intermediate_size`
    num_layers: int = 12  # `decoder_depth`
    n_fft: int = 1280  # `istft_n_fft`
    hop_length: int = 320  # `istft_hop`: 50 Hz frames at 16 kHz
    layer_scale_init: float | None = None  # None: 1 / num_layers, as Vocos

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def receptive_radius(self) -> int:
        """Input frames on each side that can influence one output frame's samples:
        the stem conv and one depthwise conv per block (kernel 7 → 3 each), plus the
        ISTFT frames overlapping a sample."""
        return 3 * (self.num_layers + 1) + math.ceil(self.n_fft / self.hop_length)


class ConvNeXtBlock(nn.Module):
    """x (Tensor): (B, C, T) → (B, C, T): depthwise conv k7, LN, MLP, layer scale, residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(layer_scale_init * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.transpose(1, 2)


class VocosBackbone(nn.Module):
    """x (Tensor): (B, input_dim, T) → (B, T, dim)."""

    def __init__(self, config: VocosDecoderConfig):
        super().__init__()
        self.embed = nn.Conv1d(config.input_dim, config.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        scale = config.layer_scale_init or 1.0 / config.num_layers
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, scale)
            for _ in range(config.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: T frames → exactly T × hop samples.

    torch.istft only offers centre padding (its NOLA check fails at the edges of a
    "same" frame grid), so the inverse is written out: irfft, Hann window,
    overlap-add, trim (n_fft − hop) / 2 per side, divide by the window envelope.
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.empty(n_fft), persistent=False)
        self.init_derived_buffers()

    def init_derived_buffers(self) -> None:
        if self.window.is_meta:  # built on the meta device: filled in after `to_empty`
            return
        self.window = torch.hann_window(self.n_fft, device=self.window.device)

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (Tensor): (B, n_fft, T) → (B, (T − 1) · hop + n_fft)."""
        t = frames.shape[-1]
        size = (t - 1) * self.hop_length + self.n_fft
        out = F.fold(
            frames, output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop_length)
        )
        return out[:, 0, 0]

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """spec (Tensor): complex (B, n_fft // 2 + 1, T) → (B, T · hop)."""
        t = spec.shape[-1]
        pad = (self.n_fft - self.hop_length) // 2
        frames = torch.fft.irfft(spec, self.n_fft, dim=1) * self.window[None, :, None]
        y = self._overlap_add(frames)
        envelope = self._overlap_add(self.window.square()[None, :, None].expand(1, -1, t))
        keep = slice(
            pad, pad + t * self.hop_length
        )  # trim first: the envelope is 0 at the very edges
        return y[:, keep] / envelope[:, keep]


class ISTFTHead(nn.Module):
    """x (Tensor): (B, T, dim) → waveform (B, T · hop), always computed in fp32."""

    def __init__(self, dim: int, n_fft: int, hop_length: int):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            x = self.out(x.float()).transpose(1, 2)
            log_mag, phase = x.chunk(2, dim=1)
            mag = torch.exp(log_mag).clamp(max=1e2)  # Vocos' guard against huge magnitudes
            spec = torch.polar(mag, phase)
            return self.istft(spec)


class VocosDecoder(nn.Module):
    """latent frames (B, input_dim, T) → waveform (B, T · hop_length)."""

    def __init__(self, config: VocosDecoderConfig | None = None):
        super().__init__()
        self.config = config = config or VocosDecoderConfig()
        self.backbone = VocosBackbone(config)
        self.head = ISTFTHead(config.dim, config.n_fft, config.hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone(x.to(self.backbone.embed.weight.dtype))  # bf16/fp16 if cast
        return self.head(h)


def synthesize_chunked(
    decode: Callable[[torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    chunk_frames: int | None,
    context: int,
    hop: int,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """(B, T, D) latents → (B, T · hop) audio in bounded memory, equal to one pass.

    `decode` maps (B, t, D) → (B, t · hop) and sees at most `context` frames on either side of
    any output frame (its receptive field): each chunk of `chunk_frames` is decoded with that
    much context and only its own samples are kept. chunk_frames=None (or T ≤ chunk_frames):
    one pass. `progress(fraction)` is called after each chunk.
    """
    t = latents.shape[1]
    if chunk_frames is None or t <= chunk_frames:
        audio = decode(latents)
        if progress is not None:
            progress(1.0)
        return audio
    audio = None
    for start in range(0, t, chunk_frames):
        stop = min(t, start + chunk_frames)
        left, right = max(0, start - context), min(t, stop + context)
        y = decode(latents[:, left:right])[:, (start - left) * hop : (stop - left) * hop]
        if audio is None:
            audio = y.new_zeros(latents.shape[0], t * hop)
        audio[:, start * hop : stop * hop] = y
        if progress is not None:
            progress(stop / t)
    return audio
