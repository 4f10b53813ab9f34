"""SemantiCodec's encoder: 10.24 s fbank segments → tokens (semantic, acoustic) per frame.

Semantic branch: AudioMAE patch features, `merge` neighbouring patches concatenated (1, 1×2 or
2×2), quantised to the nearest k-means centroid (squared Euclidean distance). Acoustic branch: a
bidirectional LSTM reads [feature, its centroid] and a linear map gives the residual detail,
quantised to the nearest acoustic code. `token_to_quantized_feature` turns tokens back into the
features the decoder is conditioned on: [acoustic code vector, semantic centroid] per frame.

Padding, as the reference marks it: fbank frames whose 128 bins are constant (zero-padded audio)
after the last real frame make every later frame's LSTM input −1 (the bidirectional LSTM sees
them, so this changes the acoustic tokens of real frames too, and is reproduced exactly).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .audiomae import AudioMAEEncoder
from .configs import SEGMENT_FRAMES, SEGMENT_SAMPLES, SemantiCodecConfig
from .fbank import FRAME_LENGTH, FRAME_SHIFT, kaldi_fbank, normalise

__all__ = ["SemantiCodecEncoder", "merge_patches", "num_segments", "segment_fbank"]

PATCH_FRAMES = 16
#: samples past a segment's end that its last fbank frames read (frames 1022, 1023)
LOOKAHEAD = (SEGMENT_FRAMES - 1) * FRAME_SHIFT + FRAME_LENGTH - SEGMENT_SAMPLES


def num_segments(num_samples: int) -> int:
    """10.24 s segments the reference pads a wave to: always one more than fit whole."""
    return num_samples // SEGMENT_SAMPLES + 1


def segment_fbank(padded: torch.Tensor, index: int) -> torch.Tensor:
    """The normalised (1024, 128) fbank of segment `index` of a mean-removed wave padded to whole
    segments, as the reference's single fbank over the whole wave cuts it: a segment's last two
    frames read the next segment's first samples; the last segment's are zero rows."""
    start = index * SEGMENT_SAMPLES
    chunk = padded[start : start + SEGMENT_SAMPLES + LOOKAHEAD]
    fbank = kaldi_fbank(chunk)
    fbank = nn.functional.pad(fbank, (0, 0, 0, SEGMENT_FRAMES - fbank.shape[0]))
    return normalise(fbank)


def merge_patches(features: torch.Tensor, merge: int) -> torch.Tensor:
    """(S, 512, D) time-major patch features → (S, 512 / merge, D · merge): 1 (as is), 2
    (neighbouring frequency patches) or 4 (2 time × 2 frequency), the reference's layout."""
    s, _, d = features.shape
    grid = features.reshape(s, 64, 8, d)
    if merge == 1:
        return features
    if merge == 2:
        return grid.reshape(s, 64 * 4, 2 * d)
    grid = grid.reshape(s, 32, 2, 4, 2, d).permute(0, 1, 3, 2, 4, 5)
    return grid.reshape(s, 32 * 4, 4 * d)


def padding_cutoff(fbank: torch.Tensor, tokens: int) -> list[int]:
    """Per segment: the first token the reference marks as padding (`tokens` = none).

    A frame is padding when its bins are constant (std ≤ 1e-7); the cut is after the last other
    frame. The reference's quirk is kept: a segment with exactly one non-padding frame (or none)
    is all padding."""
    out = []
    for segment in fbank:
        constant = segment.std(dim=-1) <= 1e-7
        if not bool(constant.any()):
            out.append(tokens)
            continue
        real = torch.nonzero(~constant).flatten()
        column_max = int(real[-1]) + 1 if real.numel() > 1 else 0
        out.append(math.ceil(tokens * (column_max / SEGMENT_FRAMES)))
    return out


class SemantiCodecEncoder(nn.Module):
    """fbank segments (S, 1024, 128) → tokens (S, 512 / merge, 2) int64 [semantic, acoustic]."""

    def __init__(self, config: SemantiCodecConfig):
        super().__init__()
        self.config = config
        d = config.feature_dim
        self.audiomae = AudioMAEEncoder(
            config.embed_dim, config.depth, config.num_heads, config.mlp_ratio,
            config.contextual_depth,
        )  # fmt: skip
        self.register_buffer("centroids", torch.zeros(max(config.num_centroids, 1), d))
        self.lstm = nn.LSTM(2 * d, 2 * d, config.lstm_layers, batch_first=True, bidirectional=True)
        self.residual_proj = nn.Linear(4 * d, d, bias=False)
        self.acoustic_codebook = nn.Parameter(torch.zeros(config.acoustic_codebook_size, d))

    # ---- the semantic branch -----------------------------------------------------------------
    def semantic_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """(S, 1024, 128) → (S, T, feature_dim) AudioMAE features, patches merged."""
        return merge_patches(self.audiomae(fbank), self.config.merge)

    def quantize_semantic(self, features: torch.Tensor) -> torch.Tensor:
        """(..., feature_dim) → (...) index of the nearest centroid (squared distance)."""
        flat = features.reshape(-1, features.shape[-1])
        distances = (
            flat.pow(2).sum(-1, keepdim=True)
            + self.centroids.pow(2).sum(-1)[None]
            - 2 * flat @ self.centroids.T
        )
        return distances.argmin(-1).reshape(features.shape[:-1])

    def quantize_acoustic(self, residual: torch.Tensor) -> torch.Tensor:
        """(S, T, feature_dim) → (S, T) index of the nearest acoustic code (Euclidean)."""
        codebook = self.acoustic_codebook[None].expand(residual.shape[0], -1, -1)
        return torch.cdist(residual, codebook).argmin(-1)

    # ---- tokens ----------------------------------------------------------------------------
    def residual(self, features: torch.Tensor, semantic: torch.Tensor, cutoff: list[int]):
        """The acoustic branch's continuous output (S, T, feature_dim) before quantisation."""
        stacked = torch.cat([features, self.centroids[semantic]], dim=-1)
        for i, cut in enumerate(cutoff):
            stacked[i, cut:] = -1.0
        return self.residual_proj(self.lstm(stacked)[0])

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        features = self.semantic_features(fbank)
        semantic = self.quantize_semantic(features)
        cutoff = padding_cutoff(fbank, features.shape[1])
        acoustic = self.quantize_acoustic(self.residual(features, semantic, cutoff))
        return torch.stack([semantic, acoustic], dim=-1)

    def training_features(self, fbank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For training the acoustic branch with a decoder: (S, 1024, 128) → (quantized features
        (S, T, 2·D) with straight-through gradients to the LSTM and projection, VQ-VAE loss =
        codebook + 0.25 · commitment MSE). AudioMAE and the centroids stay frozen."""
        with torch.no_grad():
            features = self.semantic_features(fbank)
            semantic = self.quantize_semantic(features)
        cutoff = padding_cutoff(fbank, features.shape[1])
        residual = self.residual(features, semantic, cutoff)
        codes = self.acoustic_codebook[self.quantize_acoustic(residual.detach())]
        loss = nn.functional.mse_loss(codes, residual.detach()) + 0.25 * nn.functional.mse_loss(
            residual, codes.detach()
        )
        acoustic = residual + (codes - residual).detach()
        return torch.cat([acoustic, self.centroids[semantic]], dim=-1), loss

    def token_to_quantized_feature(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, 2) tokens → (B, T, 2 · feature_dim) [acoustic code vector, centroid]."""
        semantic, acoustic = tokens[..., 0].long(), tokens[..., 1].long()
        return torch.cat([self.acoustic_codebook[acoustic], self.centroids[semantic]], dim=-1)
