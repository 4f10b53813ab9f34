"""Training configuration for `sonotok train generation`: YAML file + `--set a.b=value` overrides."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sonotok.core.config import check_numbers
from sonotok.core.errors import ConfigError

from .dit import DiTConfig, typed_config
from .flow import FlowMatchingObjective
from .hub import GenerationError
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
                raise GenerationError(f"data.{name}={value!r}: give a number or 'auto'")
        if not isinstance(self.latent_std, str) and self.latent_std <= 0:
            raise GenerationError(f"data.latent_std must be > 0, got {self.latent_std}")
        _check(self, "data", positive=("max_frames",))


@dataclass
class TrainConfig:
    """Optimisation, checkpointing and logging."""

    output_dir: str = "runs/generation"
    seed: int = 0
    batch_size: int = 8  # per process
    grad_accum: int = 1
    max_steps: int = 200_000  # paper: 200k steps
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    lr_schedule: str = "constant_with_warmup"  # any diffusers.optimization.get_scheduler name
    warmup_steps: int = 1000
    grad_clip: float = 1.0
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"
    gradient_checkpointing: bool = False
    ema_decay: float = 0.9999
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    log_every: int = 50
    log_with: str | None = None  # e.g. "tensorboard"
    resume: str = "auto"  # "auto" (latest in output_dir), "none", or a checkpoint folder
    sample_every: int = 0  # 0: never; else write audio for sample_prompts every N steps
    sample_prompts: list[str] = field(default_factory=lambda: ["a dog barks", "a piano melody"])
    sample_seconds: float = 5.0
    sample_steps: int = 25
    sample_guidance: float = 5.0
    tokenizer: str | None = (
        None  # tokenizer folder / hub id to decode samples and ship in the pipeline
    )

    def __post_init__(self) -> None:
        _check(
            self,
            "train",
            positive=("batch_size", "grad_accum", "max_steps", "lr", "checkpoint_every")
            + ("keep_checkpoints", "log_every", "sample_seconds", "sample_steps"),
            non_negative=("seed", "weight_decay", "warmup_steps", "grad_clip", "sample_every")
            + ("sample_guidance",),
            below_one=("betas", "ema_decay"),
        )
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise GenerationError(
                f"train.mixed_precision={self.mixed_precision!r}; choose 'no', 'bf16' or 'fp16'"
            )


def _check(settings, prefix: str, **ranges) -> None:
    """`check_numbers` raising this package's GenerationError."""
    try:
        check_numbers(settings, prefix, **ranges)
    except ConfigError as err:
        raise GenerationError(str(err)) from None


@dataclass
class GenerationTrainConfig:
    """The whole training recipe; sections map to YAML top-level keys."""

    model: DiTConfig = field(default_factory=DiTConfig)
    objective: FlowMatchingObjective = field(default_factory=FlowMatchingObjective)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    text_encoder: str = DEFAULT_TEXT_ENCODER
    text_max_length: int = 128
    sway_coef: float | None = -1.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __post_init__(self) -> None:
        o = self.objective
        _check(self, "", positive=("text_max_length",))
        _check(o, "objective", positive=("logit_std", "shift_base_dim"), fraction=("cond_dropout",))
        if o.density not in ("logit_normal", "uniform"):
            raise GenerationError(
                f"objective.density={o.density!r}; choose 'logit_normal' or 'uniform'"
            )

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> GenerationTrainConfig:
        """Every key and value type checked (sonotok.core.config); YAML strings such as
        "3e-4" read as numbers; an empty section means its defaults."""
        if isinstance(data, dict):
            data = {k: ({} if v is None and k in _SECTIONS else v) for k, v in data.items()}
        return typed_config(cls, data, source)


_SECTIONS = ("model", "objective", "data", "train")


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b=value` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise GenerationError(f"--set {item!r}: expected key=value, e.g. train.max_steps=100")
        key, value = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise GenerationError(f"--set {item!r}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise GenerationError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    return data


def load_config(
    path: str | os.PathLike | None, overrides: list[str] | None = None
) -> GenerationTrainConfig:
    """Read a YAML recipe (None: defaults) and apply `overrides`."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise GenerationError(f"{path}: config file not found; see configs/generation/")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise GenerationError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(data, dict):
            raise GenerationError(f"{path}: expected a YAML mapping at the top level")
    apply_overrides(data, overrides or [])
    return GenerationTrainConfig.from_dict(data, str(path or "config"))
