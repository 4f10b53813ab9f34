"""Sizes of SemantiCodec's decoder: latent-diffusion UNet, mel VAE, HiFi-GAN, noise schedule.

The defaults are the official release's (`semanticodec/config.py` and the hard-coded vocoder
config in `modules/decoder/utilities/model.py` of haoheliu/SemantiCodec-inference); only the
conditioning width changes with the token rate (`for_token_rate`). `tiny()` keeps the official
time geometry (10.24 s windows of 1024 mel frames, hop 160) with minimal widths, for tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from sonotok.core.errors import ConfigError

__all__ = ["DecoderConfig"]

#: quantized-feature width per token rate: AudioMAE's 768 × 2 branches × stacked patches K
#: (`feature_dimension` in the official config.py; context_dim = this + 192).
FEATURE_DIM = {100: 1536, 50: 3072, 25: 6144}


@dataclass
class DecoderConfig:
    """Constructor arguments of `SemantiCodecDecoder` (all sizes; nothing learned)."""

    feature_dim: int = 1536  # quantized-feature width C (100 tokens/s)
    pos_embed_dim: int = 192  # PositionalEncoding(seq_length=512, embedding_dim=192), ddpm.py
    pos_embed_len: int = 512
    # UNet (openaimodel.UNetModel in the official config)
    latent_channels: int = 8
    latent_t_size: int = 256
    latent_f_size: int = 16
    model_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 3, 5)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (8, 4, 2)
    num_head_channels: int = 32
    transformer_depth: int = 1
    # noise schedule (LatentDiffusion params: linear_start/end, timesteps, parameterization "v")
    timesteps: int = 1000
    linear_start: float = 0.0015
    linear_end: float = 0.0195
    # mel VAE (first_stage_config.ddconfig)
    vae_channels: int = 128
    vae_ch_mult: tuple[int, ...] = (1, 2, 4)
    vae_num_res_blocks: int = 2
    mel_bins: int = 64
    # HiFi-GAN (get_vocoder's config)
    vocoder_initial_channel: int = 1024
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = field(
        default_factory=lambda: ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    )
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        for name in (
            "channel_mult",
            "attention_resolutions",
            "vae_ch_mult",
            "upsample_rates",
            "upsample_kernel_sizes",
            "resblock_kernel_sizes",
        ):
            setattr(self, name, tuple(getattr(self, name)))
        self.resblock_dilation_sizes = tuple(tuple(d) for d in self.resblock_dilation_sizes)
        if self.model_channels % 32 or self.vae_channels % 32:
            raise ConfigError(
                f"DecoderConfig: model_channels={self.model_channels} and vae_channels="
                f"{self.vae_channels} must be multiples of 32 (GroupNorm with 32 groups)"
            )
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ConfigError(
                "DecoderConfig: upsample_rates and upsample_kernel_sizes differ in length"
            )

    @classmethod
    def for_token_rate(cls, token_rate: int, **overrides) -> DecoderConfig:
        """The official decoder for 25, 50 or 100 tokens/s (only the feature width differs)."""
        if token_rate not in FEATURE_DIM:
            raise ConfigError(f"token_rate={token_rate}: SemantiCodec has 25, 50 or 100 tokens/s")
        return cls(feature_dim=FEATURE_DIM[token_rate], **overrides)

    @classmethod
    def tiny(cls, feature_dim: int = 16, **overrides) -> DecoderConfig:
        """Minimal widths, official time geometry (tests and the tiny training config)."""
        sizes = dict(
            feature_dim=feature_dim,
            latent_channels=4,
            model_channels=32,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attention_resolutions=(2,),
            vae_channels=32,
            vae_ch_mult=(1, 1, 1),
            vae_num_res_blocks=1,
            mel_bins=16,
            latent_f_size=4,
            vocoder_initial_channel=32,
            resblock_kernel_sizes=(3,),
            resblock_dilation_sizes=((1, 3, 5),),
        )
        sizes.update(overrides)
        return cls(**sizes)

    @property
    def context_dim(self) -> int:
        """Cross-attention width: the feature plus its sinusoidal position embedding."""
        return self.feature_dim + self.pos_embed_dim

    @property
    def hop_length(self) -> int:
        """Audio samples per mel frame (product of the HiFi-GAN upsample rates: 160)."""
        return math.prod(self.upsample_rates)

    @property
    def mel_frames(self) -> int:
        """Mel frames per window: latent frames × the VAE's time upsampling (1024)."""
        return self.latent_t_size * 2 ** (len(self.vae_ch_mult) - 1)

    @property
    def window_samples(self) -> int:
        """Audio samples one diffusion window produces: 163872 in the release, not 163840.

        HiFi-GAN's transposed convolutions (padding (k - u) // 2) add a few samples per stage;
        the reference's overlap-add keeps them, so each window advances 32 samples more than
        its tokens cover (the final trim hides it)."""
        length = self.mel_frames
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            length = (length - 1) * rate - 2 * ((kernel - rate) // 2) + kernel
        return length

    def to_dict(self) -> dict:
        return asdict(self)
