"""The tokenizer training recipe as typed settings (one dataclass per YAML section).

Defaults are the DashengTokenizer paper's: L_G = 45·L_sem + 45·L_mel + L_fm + L_adv, hinge
GAN with a multi-frequency discriminator, AdamW(0.8, 0.9) at 5e-4 with cosine decay to 10%,
global batch 256. See configs/tokenizer/paper.yaml and tiny.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar, Literal

from sonotok.core import training
from sonotok.core.audio import SAMPLE_RATE
from sonotok.core.config import check_numbers

from ..acoustic import AcousticProjectionConfig
from ..config import ConfigError
from ..decoder import VocosDecoderConfig
from .data import SourceConfig

HOP_SAMPLES = 640  # samples per 25 Hz latent frame at 16 kHz


@dataclass
class ModelSettings:
    """What to train from. `pretrained`: a tokenizer folder or hub id to fine-tune (the
    official mispeech/dashengtokenizer or one of ours). Otherwise a new tokenizer: a random
    acoustic branch and decoder of `architecture` size on `semantic_encoder` (a Dasheng
    folder, hub id or .pt of any size; null: random, for smoke tests only). `decoder`
    overrides fields of the architecture's VocosDecoderConfig, e.g. {dim: 384, num_layers: 8}
    for a smaller vocoder (input_dim always follows the semantic encoder).
    `train_acoustic: false` keeps the acoustic branch fixed, so the latents stay exactly as
    they are: fine-tune only the decoder (e.g. a GAN phase) while latents already extracted
    for a generator or denoiser stay valid."""

    pretrained: str | None = None
    semantic_encoder: str | None = None
    architecture: Literal["paper", "tiny"] = "paper"
    decoder: dict[str, int | float] = field(default_factory=dict)
    semantic_dtype: Literal["fp32", "bf16"] = "fp32"  # the frozen encoder may run in bf16
    train_acoustic: bool = True

    def __post_init__(self):
        if self.pretrained and self.semantic_encoder:
            raise ConfigError(
                "set model.pretrained (fine-tune a tokenizer) or model.semantic_encoder (new tokenizer), not both"
            )
        if self.pretrained and self.decoder:
            raise ConfigError(
                "model.decoder changes a new tokenizer's vocoder; it cannot apply to model.pretrained"
            )
        valid = {f.name for f in fields(VocosDecoderConfig)} - {"input_dim"}
        unknown = sorted(set(self.decoder) - valid)
        if unknown:
            raise ConfigError(
                f"model.decoder: unknown keys {unknown}; valid keys are {sorted(valid)}"
            )


@dataclass
class DiscriminatorSettings:
    """Each discriminator's loss weight; 0 disables it. mfd: multi-frequency (STFT magnitude
    + phase, VISinger2-style, the paper's); mpd / mrd: Vocos' multi-period / multi-resolution."""

    mfd: float = 1.0
    mpd: float = 0.0
    mrd: float = 0.0
    mfd_hops: list[int] = field(default_factory=lambda: [128, 256, 512])  # n_fft = 4·hop
    mfd_channels: int = 32
    mpd_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    mpd_channels: int = 32
    mrd_n_ffts: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    mrd_channels: int = 32

    def __post_init__(self):
        check_numbers(
            self,
            "discriminators",
            non_negative=("mfd", "mpd", "mrd"),
            positive=("mfd_hops", "mfd_channels", "mpd_periods", "mpd_channels")
            + ("mrd_n_ffts", "mrd_channels"),
        )
        if self.mfd + self.mpd + self.mrd == 0:
            raise ConfigError(
                "all discriminator weights are 0; enable at least one (e.g. discriminators.mfd=1)"
            )


@dataclass
class LossSettings:
    """L_G = semantic·‖z_sem − z_ac‖² + mel·L1(log-mel) + feature_matching·L_fm + adversarial·L_adv."""

    semantic: float = 45.0  # paper
    mel: float = 45.0  # paper
    feature_matching: float = 1.0
    adversarial: float = 1.0
    mel_n_fft: int = 1024
    mel_hop: int = 256
    mel_bins: int = 100  # Vocos' mel loss front end

    def __post_init__(self):
        check_numbers(
            self,
            "loss",
            non_negative=("semantic", "mel", "feature_matching", "adversarial"),
            positive=("mel_n_fft", "mel_hop", "mel_bins"),
        )


@dataclass
class OptimSettings(training.OptimSettings):
    """The shared optim section (one AdamW per model: generator and discriminators)."""

    lr: float = 5e-4  # paper, generator and discriminators
    betas: tuple[float, float] = (0.8, 0.9)  # Vocos / paper
    weight_decay: float = 0.01
    min_lr_ratio: float = 0.1  # cosine decay to 10% of lr (paper)
    mel_only_steps: int = 0  # generator-only warm-up with λ_sem·L_sem + λ_mel·L_mel

    def __post_init__(self):
        super().__post_init__()
        check_numbers(self, "optim", non_negative=("mel_only_steps",))


@dataclass
class CropDataSettings:
    """The data section both GAN recipes share: sources, crop lengths (samples at the model's
    rate), validation crops and the skipping of silent / unreadable items."""

    sources: list[SourceConfig] = field(default_factory=list)
    val_sources: list[SourceConfig] = field(default_factory=list)
    segment_samples: int = 16000
    val_items: int = 8
    val_segment_samples: int = 5 * SAMPLE_RATE
    val_speech: bool = False  # also report PESQ / STOI (validation data is speech)
    silence_db: float = -60.0  # crops quieter than this RMS are redrawn and counted
    num_workers: int = 2
    max_attempts: int = 50  # draws per sample before the run stops as "data mostly unusable"

    def __post_init__(self):
        check_numbers(
            self, "data", positive=("val_items", "max_attempts"), non_negative=("num_workers",)
        )


@dataclass
class DataSettings(CropDataSettings):
    """Crops at 16 kHz, whole latent frames (multiples of 640 samples)."""

    segment_samples: int = 16000 + 4 * HOP_SAMPLES  # 1.16 s training crops (a multiple of 640)

    def __post_init__(self):
        super().__post_init__()
        for name in ("segment_samples", "val_segment_samples"):
            value = getattr(self, name)
            if value <= 0 or value % HOP_SAMPLES:
                nearest = max(HOP_SAMPLES, round(value / HOP_SAMPLES) * HOP_SAMPLES)
                raise ConfigError(
                    f"{name}={value} must be a positive multiple of {HOP_SAMPLES} (one latent frame); "
                    f"use e.g. {nearest}"
                )


@dataclass
class GANTrainSettings(training.TrainSettings):
    """The shared train section, plus validation and media intervals (both GAN recipes)."""

    checkpoint_every: int = 5000
    audio_every: int = 5000  # audio examples + mel image to TensorBoard (0: never)
    val_every: int = 5000  # 0: never

    def __post_init__(self):
        super().__post_init__()
        check_numbers(self, "train", non_negative=("audio_every", "val_every"))


@dataclass
class TrainSettings(GANTrainSettings):
    """The GAN train section at the paper's scale."""

    output_dir: str = "runs/tokenizer"
    max_steps: int = 1_000_000  # paper
    batch_size: int = 256  # global: per-device batch × processes × grad_accum (paper: 256)
    val_every: int = 10000  # 0: never


def spectral_needs(discriminators: DiscriminatorSettings) -> dict[str, int]:
    """The n_fft each enabled spectral discriminator needs, by the setting that asks for it."""
    d, needs = discriminators, {}
    if d.mfd:
        needs["discriminators.mfd_hops (n_fft = 4 × hop)"] = 4 * max(d.mfd_hops)
    if d.mrd:
        needs["discriminators.mrd_n_ffts"] = max(d.mrd_n_ffts)
    return needs


def shortest_crop(needs: dict[str, int]) -> tuple[int, str]:
    """The fewest samples a crop can have under centred STFTs of these n_fft (each reflect-pads
    n_fft // 2 samples at both ends, which needs more samples than that), and the reason."""
    name, n_fft = max(needs.items(), key=lambda item: item[1])
    return n_fft // 2 + 1, f"{name} = {n_fft}"


def check_crops(config, least: int, reason: str, multiple: int, advice: str) -> None:
    """ConfigError when data.sources is empty or a crop is shorter than `least` samples; the
    fix offered rounds up to `multiple`, followed by `advice`."""
    if not config.data.sources:
        raise ConfigError(
            "data.sources is empty; add at least one, e.g. --set 'data.sources=[{path: my_wavs/}]'"
        )
    for name in ("segment_samples", "val_segment_samples"):
        value = getattr(config.data, name)
        if value < least:
            fix = math.ceil(least / multiple) * multiple
            raise ConfigError(
                f"data.{name}={value} is too short for {reason}: a centred STFT needs at "
                f"least {least} samples; use data.{name}={fix} or more {advice}"
            )


def min_segment_samples(config: TokenizerTrainConfig) -> tuple[int, str]:
    """The fewest samples a training crop can have, and the setting that asks for them: every
    STFT of the recipe (the acoustic front end, the mel loss, the enabled spectral
    discriminators) is centred."""
    needs = {
        "loss.mel_n_fft": config.loss.mel_n_fft,
        "the acoustic front end's n_fft": AcousticProjectionConfig().n_fft,
    }
    return shortest_crop({**needs, **spectral_needs(config.discriminators)})


@dataclass
class TokenizerTrainConfig:
    """Everything `sonotok train tokenizer` reads from its YAML file."""

    RENAMED: ClassVar[dict[str, str]] = training.OLD_KEYS

    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    discriminators: DiscriminatorSettings = field(default_factory=DiscriminatorSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    def __post_init__(self):
        check_crops(self, *min_segment_samples(self), HOP_SAMPLES, "(or a smaller n_fft)")
