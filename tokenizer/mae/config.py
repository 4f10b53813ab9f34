"""`sonotok train semantic` settings: one dataclass per YAML section (configs/semantic/).

Defaults follow MAE (He et al. 2022), which Dasheng's pretraining uses: 75 % masking,
normalised-patch loss, AdamW(0.9, 0.95) with weight decay 0.05, linear warm-up then cosine
decay, learning rate 1.5e-4 × global batch / 256.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sonotok.core import training
from sonotok.core.config import check_numbers

from ..config import ConfigError
from ..semantic import SemanticEncoderConfig
from ..train.data import SourceConfig


@dataclass
class ModelSettings:
    """The encoder to pretrain and its MAE decoder. `init_encoder`: continue from an existing
    encoder (a SemanticEncoder folder, a Dasheng hub id or .pt); null: a new one of size
    `encoder`."""

    encoder: SemanticEncoderConfig = field(default_factory=SemanticEncoderConfig)
    init_encoder: str | None = None
    decoder_dim: int = 512  # Dasheng MAE decoder
    decoder_depth: int = 8
    decoder_heads: int = 16
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True

    def __post_init__(self):
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"model.mask_ratio must be in [0, 1), got {self.mask_ratio}")
        check_numbers(self, "model", positive=("decoder_dim", "decoder_depth", "decoder_heads"))
        if self.decoder_dim % self.decoder_heads:
            raise ConfigError(
                f"model.decoder_dim {self.decoder_dim} is not divisible by decoder_heads {self.decoder_heads}"
            )
        if self.encoder.embed_dim % self.encoder.num_heads:
            raise ConfigError(
                f"model.encoder.embed_dim {self.encoder.embed_dim} is not divisible by num_heads "
                f"{self.encoder.num_heads}"
            )


@dataclass
class DataSettings:
    sources: list[SourceConfig] = field(default_factory=list)
    segment_samples: int = 161280  # 10.08 s: one Dasheng chunk (1008 mel frames)
    silence_db: float = -60.0
    num_workers: int = 2
    max_attempts: int = 50

    def __post_init__(self):
        if self.segment_samples < 1280:
            raise ConfigError(
                f"data.segment_samples={self.segment_samples} is too short; use at least 1280 (2 patches)"
            )
        check_numbers(self, "data", positive=("max_attempts",), non_negative=("num_workers",))


@dataclass
class OptimSettings(training.OptimSettings):
    lr: float = 1.5e-4  # MAE base learning rate for a global batch of 256
    betas: tuple[float, float] = (0.9, 0.95)  # MAE
    weight_decay: float = 0.05  # MAE; not applied to biases, norms and position embeddings
    warmup_steps: int = 2000
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0  # 0 disables (MAE uses none)


@dataclass
class TrainSettings(training.TrainSettings):
    output_dir: str = "runs/semantic"
    batch_size: int = 256  # global: per-device batch × processes × grad_accum
    checkpoint_every: int = 2000


@dataclass
class SemanticTrainConfig:
    """Everything `sonotok train semantic` reads from its YAML file."""

    RENAMED: ClassVar[dict[str, str]] = training.OLD_KEYS

    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    def __post_init__(self):
        if not self.data.sources:
            raise ConfigError(
                "data.sources is empty; pass --data corpus/clips (or a folder of audio), or "
                "--set 'data.sources=[{path: my_wavs/}]'"
            )
        enc = self.model.encoder
        least = max(enc.n_fft // 2 + 1, (2 * enc.patch_frames - 1) * enc.hop_length)
        if self.data.segment_samples < least:
            raise ConfigError(
                f"data.segment_samples={self.data.segment_samples} is too short for the encoder "
                f"(n_fft {enc.n_fft}, hop {enc.hop_length}, 2 patches of {enc.patch_frames} "
                f"frames); use at least {least}"
            )
