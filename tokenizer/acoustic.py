"""The trained acoustic branch: 128-bin log-mel patches projected to the latent width.

DashengTokenizer adds this to the semantic tokens so that the fused latent keeps the
detail a vocoder needs: magnitude mel (n_fft 1024, hop 160), log, one Conv2d over
128×4 patches, LayerNorm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .mel import MelSpectrogram, num_frames
from .semantic import pad_stack, token_mask


@dataclass
class AcousticProjectionConfig:
    embed_dim: int = 1280
    n_mels: int = 128  # DashengTokenizer config `n_mels_patch`
    n_fft: int = 1024
    hop_length: int = 160
    patch_frames: int = 4
    sample_rate: int = 16000

    def to_dict(self) -> dict:
        return asdict(self)


class AcousticProjection(nn.Module):
    """16 kHz waves → (B, T, embed_dim) at 25 Hz, T = (1 + N // hop) // 4."""

    def __init__(self, config: AcousticProjectionConfig | None = None):
        super().__init__()
        self.config = config = config or AcousticProjectionConfig()
        self.front_end = MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            power=1.0,
        )
        p = config.patch_frames
        self.patch_embed = nn.Conv2d(1, config.embed_dim, (config.n_mels, p), (config.n_mels, p))
        self.norm = nn.LayerNorm(config.embed_dim, eps=1e-5)

    def log_mel(self, wave: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """log(clamp(mel, 1e-7)) of frames [start, stop): (n_mels, stop - start)."""
        return torch.log(torch.clamp(self.front_end.frames(wave, start, stop), min=1e-7))

    def embed_segment(self, waves: list[torch.Tensor], start: int, stop: int) -> torch.Tensor:
        """Tokens of mel frames [start, stop) per clip: (B, (stop - start) // 4, D);
        tokens a clip does not have are zero."""
        cfg = self.config
        frames = [num_frames(w.shape[-1], cfg.hop_length) for w in waves]
        feats = [
            self.log_mel(w, start, min(stop, n)) if start < n else w.new_zeros(cfg.n_mels, 0)
            for w, n in zip(waves, frames)
        ]
        x = pad_stack(feats, stop - start).to(self.patch_embed.weight.dtype)
        x = self.patch_embed(x.unsqueeze(1)).flatten(2).transpose(1, 2)  # (B, T, D)
        x = self.norm(x)
        counts = torch.tensor([n // cfg.patch_frames for n in frames], device=x.device)
        return x * token_mask(counts, start // cfg.patch_frames, x.shape[1])[..., None]
