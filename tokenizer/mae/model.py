"""A masked autoencoder around sonotok's `SemanticEncoder` (Dasheng's pretraining recipe).

The encoder is the very module the tokenizer freezes — same mel front end, `init_bn`,
64×4 patch embedding, position embeddings, ViT blocks and final norm — run on the 25 % of
patches that survive masking. A light Transformer decoder (Dasheng: 512-d, 8 blocks, 16
heads) fills in mask tokens and predicts the dB mel values of every patch; the loss counts
only the removed ones. After training, only the encoder is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..mel import num_frames, power_to_db
from ..semantic import Block, SemanticEncoder, SemanticEncoderConfig
from .loss import mae_loss, patchify
from .masking import random_masking


@dataclass
class MAEConfig:
    """Encoder size (a SemanticEncoderConfig) + MAE decoder and masking settings."""

    encoder: SemanticEncoderConfig = field(default_factory=SemanticEncoderConfig)
    decoder_dim: int = 512  # Dasheng MAE decoder (dasheng_base / dasheng_06B)
    decoder_depth: int = 8
    decoder_heads: int = 16
    mask_ratio: float = 0.75  # Dasheng / MAE
    norm_pix_loss: bool = True  # Dasheng's MAELoss default


class MAEDecoder(nn.Module):
    """Kept tokens (B, L_keep, D_enc) + ids_restore (B, L) → patch predictions (B, L, P)."""

    def __init__(
        self, input_dim: int, dim: int, depth: int, heads: int, max_patches: int, patch_dim: int
    ):
        super().__init__()
        self.input_proj = nn.Linear(input_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, max_patches, dim)
        )  # learned, zero init (Dasheng)
        self.blocks = nn.ModuleList(Block(dim, heads, 4.0, True, None) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.output = nn.Linear(dim, patch_dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, kept: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.input_proj(kept)
        b, length = ids_restore.shape
        filler = self.mask_token.expand(b, length - x.shape[1], -1)
        x = torch.cat([x, filler], dim=1)
        x = x.gather(1, ids_restore[..., None].expand(-1, -1, x.shape[-1]))  # back in order
        x = x + self.pos_embed[:, :length]
        for block in self.blocks:
            x = block(x)
        return self.output(self.norm(x))


def init_encoder_weights(encoder: SemanticEncoder) -> None:
    """Dasheng's encoder initialisation for training from scratch: Xavier-uniform linear
    layers with zero bias, unit LayerNorms."""
    for module in encoder.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class MaskedAutoencoder(nn.Module):
    """MAE pretraining model; `forward(audio)` returns the loss and what it was made of."""

    def __init__(self, config: MAEConfig, encoder: SemanticEncoder | None = None):
        super().__init__()
        self.config = config
        if encoder is None:
            encoder = SemanticEncoder(config.encoder)
            init_encoder_weights(encoder)
        self.encoder = encoder
        enc = encoder.config
        self.decoder = MAEDecoder(
            enc.embed_dim,
            config.decoder_dim,
            config.decoder_depth,
            config.decoder_heads,
            enc.target_length // enc.patch_frames,
            enc.n_mels * enc.patch_frames,
        )

    def mel_db(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (Tensor): (B, N) 16 kHz → dB mel (B, n_mels, T), T a whole number of patches
        and at most one encoder chunk (target_length frames). Each clip's dB floor comes
        from its own maximum, exactly as `SemanticEncoder` featurises it (batched here)."""
        cfg = self.encoder.config
        total = num_frames(audio.shape[-1], cfg.hop_length)
        frames = min(total - total % cfg.patch_frames, cfg.target_length)
        if frames < cfg.patch_frames:
            raise ValueError(f"clips of {audio.shape[-1]} samples are too short for one patch")
        # features in fp32 even under mixed precision (dB of bf16 power is too coarse)
        with torch.no_grad(), torch.autocast(audio.device.type, enabled=False):
            power = self.encoder.front_end.frames(audio.float())  # (B, n_mels, total)
            reference = power.amax(dim=(1, 2), keepdim=True)
            return power_to_db(power[..., :frames], reference, cfg.top_db)

    def forward(
        self, audio: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """audio (Tensor): (B, N); `generator` draws the masks (default: torch's global one).
        Returns loss (scalar), pred and target (B, L, n_mels·4), mask (B, L), 1 = removed."""
        enc = self.encoder
        mel = self.mel_db(audio)
        x = enc.init_bn(mel)  # learns the BatchNorm statistics the frozen encoder later uses
        x = enc.patch_embed(x.unsqueeze(1))  # (B, D, 1, L)
        x = x + enc.time_pos_embed[..., : x.shape[-1]] + enc.freq_pos_embed
        tokens = x.flatten(2).transpose(1, 2)  # (B, L, D)
        kept, mask, ids_restore = random_masking(tokens, self.config.mask_ratio, generator)
        for block in enc.blocks:
            kept = block(kept)
        kept = enc.norm(kept)
        pred = self.decoder(kept, ids_restore)
        target = patchify(mel, enc.config.patch_frames)
        loss = mae_loss(pred, target, mask, self.config.norm_pix_loss)
        return {"loss": loss, "pred": pred, "target": target, "mask": mask}
