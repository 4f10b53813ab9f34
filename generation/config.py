"""Training configuration for `sonotok train generation` (configs/generation/): the train: and
optim: sections every recipe shares (sonotok.core.training) plus model:, objective:, data: and
the text encoder, read by the core's one YAML loader with `--set a.b=value` overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from sonotok.core import training
from sonotok.core.config import check_numbers, load_yaml_config, to_dict
from sonotok.core.errors import ConfigError

from .dit import DiTConfig
from .flow import FlowMatchingObjective
from .text import DEFAULT_TEXT_ENCODER


@dataclass
class DataConfig:
    """A `datasets` folder (save_to_disk) with `latents` [T, D], `num_frames`, a caption column."""

    path: str = ""
    caption_column: str = "caption"
    max_frames: int = 250  # 10 s at 25 Hz; longer rows are randomly cropped
    latent_mean: float | str = 0.0  # "auto": estimate mean/std from up to 256 rows
    latent_std: float | str = 1.0

    def __post_init__(self) -> None:
        for name in ("latent_mean", "latent_std"):
            value = getattr(self, name)
            if isinstance(value, str) and value != "auto":
                raise ConfigError(f"data.{name}={value!r}: give a number or 'auto'")
        if not isinstance(self.latent_std, str) and self.latent_std <= 0:
            raise ConfigError(f"data.latent_std must be > 0, got {self.latent_std}")
        check_numbers(self, "data", positive=("max_frames",))


@dataclass
class TrainConfig(training.TrainSettings):
    """The shared train section (batch_size is global), plus audio samples during training."""

    output_dir: str = "runs/generation"
    batch_size: int = 8
    max_steps: int = 200_000  # paper: 200k steps
    checkpoint_every: int = 5000
    gradient_checkpointing: bool = False
    sample_every: int = 0  # 0: never; else write audio for sample_prompts every N steps
    sample_prompts: list[str] = field(default_factory=lambda: ["a dog barks", "a piano melody"])
    sample_seconds: float = 5.0
    sample_steps: int = 25
    sample_guidance: float = 5.0
    # the tokenizer the latents came from (folder or hub id): decodes the samples; a folder is
    # copied into pipeline/, a hub id is named there
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_numbers(
            self,
            "train",
            positive=("sample_seconds", "sample_steps"),
            non_negative=("sample_every", "sample_guidance"),
        )


@dataclass
class OptimConfig(training.OptimSettings):
    """The shared optim section; a DiT keeps its rate after the warm-up by default."""

    lr: float = 1e-4  # not stated in the paper; a common DiT choice
    schedule: Literal["cosine", "constant"] = "constant"
    min_lr_ratio: float = 0.0
    ema_decay: float | None = 0.9999


@dataclass
class GenerationTrainConfig:
    """The whole training recipe; sections map to YAML top-level keys."""

    RENAMED: ClassVar[dict[str, str]] = training.OLD_KEYS

    model: DiTConfig = field(default_factory=DiTConfig)
    objective: FlowMatchingObjective = field(default_factory=FlowMatchingObjective)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    text_encoder: str = DEFAULT_TEXT_ENCODER
    text_max_length: int = 128
    sway_coef: float | None = -1.0

    def to_dict(self) -> dict:
        return to_dict(self)

    def __post_init__(self) -> None:
        o = self.objective
        check_numbers(self, "", positive=("text_max_length",))
        check_numbers(
            o, "objective", positive=("logit_std", "shift_base_dim"), fraction=("cond_dropout",)
        )
        if o.density not in ("logit_normal", "uniform"):
            raise ConfigError(
                f"objective.density={o.density!r}; choose 'logit_normal' or 'uniform'"
            )


def load_config(
    path: str | os.PathLike | None, overrides: list[str] | None = None
) -> GenerationTrainConfig:
    """Read a YAML recipe (None: defaults) and apply `overrides` (the core's one loader)."""
    return load_yaml_config(GenerationTrainConfig, Path(path) if path else None, overrides)
