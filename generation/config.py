"""Training configuration for `sonotok train generation`: YAML file + `--set a.b=value` overrides."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .dit import DiTConfig
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

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> GenerationTrainConfig:
        sections = {
            "model": DiTConfig,
            "objective": FlowMatchingObjective,
            "data": DataConfig,
            "train": TrainConfig,
        }
        scalars = {f.name for f in dataclasses.fields(cls)} - set(sections)
        unknown = sorted(set(data) - set(sections) - scalars)
        if unknown:
            raise GenerationError(
                f"{source}: unknown keys {unknown}; known: {sorted(set(sections) | scalars)}"
            )
        kwargs = _coerce(cls, {k: v for k, v in data.items() if k in scalars}, "")
        for name, kind in sections.items():
            values = data.get(name) or {}
            known = {f.name for f in dataclasses.fields(kind)}
            bad = sorted(set(values) - known)
            if bad:
                raise GenerationError(f"{source}: unknown keys {[f'{name}.{b}' for b in bad]}")
            kwargs[name] = kind(**_coerce(kind, values, f"{name}."))
        if isinstance(kwargs["train"].betas, list):
            kwargs["train"].betas = tuple(kwargs["train"].betas)
        return cls(**kwargs)


def _coerce(kind, values: dict, section: str) -> dict:
    """Turn YAML strings such as "3e-4" (YAML 1.1 reads them as text) into the fields' numbers."""
    types = {f.name: str(f.type) for f in dataclasses.fields(kind)}
    out = dict(values)
    for key, value in values.items():
        kind_name = types.get(key, "")
        if not isinstance(value, str) or not ("float" in kind_name or kind_name.startswith("int")):
            continue
        try:
            out[key] = float(value) if "float" in kind_name else int(value)
        except ValueError:
            if "str" not in kind_name:
                raise GenerationError(f"{section}{key}={value!r}: expected a number") from None
    return out


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
        node[parts[-1]] = yaml.safe_load(value)
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
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise GenerationError(f"{path}: expected a YAML mapping at the top level")
    apply_overrides(data, overrides or [])
    return GenerationTrainConfig.from_dict(data, str(path or "config"))
