"""The training configuration (configs/enhancement/): the train: and optim: sections every
recipe shares (sonotok.core.training) plus the tokenizer, model:, data: and validation:, read
by the core's one YAML loader with `--set key.path=value` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from sonotok.core import training
from sonotok.core.audio import MIN_SAMPLES, SAMPLE_RATE
from sonotok.core.config import check_numbers, load_yaml_config, to_dict
from sonotok.core.errors import ConfigError

from .denoiser import DenoiserConfig


@dataclass
class DataConfig:
    """Where examples come from: `clean` + `noise` (+ `rir`) sources mixed on the fly, or
    `paired` {noisy: DIR, clean: DIR}, or cached `latents` {noisy: PATH, clean: PATH, key: id}.
    A source is a folder, file, glob, list of those, or {dataset: NAME_OR_PATH, split, column}."""

    clean: Any = None
    noise: Any = None
    rir: Any = None
    paired: dict[str, str] | None = None
    latents: dict[str, Any] | None = None
    segment_seconds: float = 4.0
    snr_db: tuple[float, float] = (-5.0, 20.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    reverb_prob: float = 0.0
    num_workers: int = 0

    def __post_init__(self):
        check_numbers(self, "data", fraction=("reverb_prob",), non_negative=("num_workers",))
        check_seconds(self.segment_seconds, "data.segment_seconds")
        for name in ("snr_db", "gain_db"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError(f"data.{name}=[{low}, {high}]: the low end is above the high end")

    def kind(self, where: str = "data") -> str:
        kinds = [
            k
            for k, on in (
                ("mixed", self.clean is not None),
                ("paired", self.paired),
                ("latents", self.latents),
            )
            if on
        ]
        if len(kinds) != 1:
            raise ConfigError(
                f"{where}: set exactly one of clean+noise (mixing on the fly), paired or latents; got {kinds or 'none'}"
            )
        if kinds[0] == "mixed" and self.noise is None:
            raise ConfigError(
                f"{where}.noise: mixing on the fly needs noise clips next to {where}.clean"
            )
        return kinds[0]


@dataclass
class ValidationConfig:
    """A fixed held-out set of mixes scored with PESQ / STOI. Sources default to the
    training ones (with another seed); point them at held-out files for a fair score."""

    every: int = 1000
    num_examples: int = 8
    seconds: float = 4.0
    seed: int = 1234
    clean: Any = None
    noise: Any = None
    rir: Any = None
    paired: dict[str, str] | None = None
    audio_examples: int = 2  # noisy / enhanced / clean clips written to the log

    def __post_init__(self):
        check_numbers(
            self, "validation", non_negative=("every", "num_examples", "seed", "audio_examples")
        )
        check_seconds(self.seconds, "validation.seconds")


@dataclass
class TrainLoopConfig(training.TrainSettings):
    """The shared train section (batch_size is global) and the latent loss."""

    output_dir: str = "runs/enhancement"
    batch_size: int = 16
    loss: Literal["mse", "l1"] = "mse"  # paper: MSE on latents; "l1" optional


@dataclass
class OptimConfig(training.OptimSettings):
    """The shared optim section: warm-up, cosine decay to lr × min_lr_ratio, EMA weights."""

    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    ema_decay: float | None = 0.999  # None: no EMA


def check_seconds(seconds: float, where: str) -> None:
    """A crop length the tokenizer can encode: at least one latent frame (MIN_SAMPLES)."""
    least = MIN_SAMPLES / SAMPLE_RATE
    if seconds < least:
        raise ConfigError(
            f"{where}={seconds} is too short: the tokenizer needs at least {least} s "
            f"({MIN_SAMPLES} samples, one latent frame) per example; use e.g. 1.0"
        )


@dataclass
class EnhancementTrainConfig:
    """Everything `sonotok train enhancement` reads from its YAML file. `tokenizer`: the
    frozen tokenizer (folder or hub id); a folder is copied into the exported model."""

    RENAMED: ClassVar[dict[str, str]] = training.OLD_KEYS

    tokenizer: str = "mispeech/dashengtokenizer"
    tokenizer_dtype: Literal["fp32", "bf16", "fp16"] = (
        "fp32"  # bf16 allowed for the frozen encoder/decoder
    )
    model: DenoiserConfig = field(default_factory=DenoiserConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)

    def to_dict(self) -> dict:
        return to_dict(self)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> EnhancementTrainConfig:
    """A YAML file (or nothing: defaults) plus `key.path=value` overrides, every key and
    type checked up front (the core's one loader)."""
    return load_yaml_config(EnhancementTrainConfig, path, list(overrides))
