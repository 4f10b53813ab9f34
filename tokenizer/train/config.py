"""YAML training configs → typed dataclasses, with `--set key=value` overrides.

Generic on purpose: any trainer describes its settings as nested dataclasses and calls
`load_config(MyConfig, "run.yaml", ["train.lr=1e-4"])`. Every key is checked against the
dataclass fields and every value against its annotation *before any work starts*, so a
typo or a wrong type fails in a second with the dotted key, what was expected and the
valid choices — not an hour into a run.

Keys and types are checked by the core's `build` (sonotok.core.config: the one typed-config
checker, also used for model config.json files); a dataclass's `__post_init__` adds range and
cross-field checks (`check_numbers`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sonotok.core.config import build, check_numbers

from ..config import ConfigError

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "apply_overrides",
    "build",
    "load_config",
    "to_dict",
    "dump_yaml",
    "check_optim",
    "require_positive",
    "per_device_batch",
]


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.max_steps=100")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    return key.strip().split("."), value


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides (values parsed as YAML; list items by index: `a.0.b=1`)."""
    values = dict(values)
    for item in overrides:
        path, value = _parse_override(item)
        node: Any = values
        for i, part in enumerate(path):
            last = i == len(path) - 1
            dotted = ".".join(path[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"--set {item!r}: {dotted}: no list item {part} (the list has {len(node)})"
                    )
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(path[:i])} is not a mapping")
            if last:
                node[part] = value
            else:
                child = node[part] if (isinstance(node, list) or part in node) else {}
                child = list(child) if isinstance(child, list) else dict(child or {})
                node[part] = child
                node = child
    return values


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Read YAML at `path` (None: defaults only), apply `overrides`, build and validate `cls`."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"{path}: no such config file; pass an existing YAML file (see configs/)"
            )
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}: the top level must be a mapping of sections, got {type(values).__name__}"
            )
    values = apply_overrides(values, list(overrides or []))
    try:
        return build(cls, values)
    except ConfigError as err:
        raise ConfigError(f"{path or 'config'}: {err}") from None


def to_dict(config: Any) -> Any:
    """A dataclass config as plain YAML-able data (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def require_positive(settings: Any, names: tuple[str, ...], prefix: str = "train") -> None:
    """Raise ConfigError naming the first of `names` on `settings` that is not > 0 (ints: >= 1)."""
    check_numbers(settings, prefix, positive=names)


def check_optim(settings: Any, prefix: str = "optim") -> None:
    """The AdamW + warm-up/cosine settings every trainer shares: lr > 0, betas in [0, 1),
    weight decay / warm-up / clipping >= 0, min_lr_ratio in [0, 1] (NaN is refused earlier)."""
    optional = [n for n in ("mel_only_steps",) if hasattr(settings, n)]
    check_numbers(
        settings,
        prefix,
        positive=("lr",),
        below_one=("betas",),
        non_negative=("weight_decay", "warmup_steps", "grad_clip", *optional),
        fraction=("min_lr_ratio",),
    )


def per_device_batch(global_batch: int, num_processes: int, grad_accum: int) -> int:
    """Samples per device and micro-step for a *global* batch; an uneven split is an error."""
    per = global_batch / (num_processes * grad_accum)
    if per != int(per):
        raise ConfigError(
            f"train.batch_size={global_batch} (global) is not divisible by "
            f"{num_processes} processes × grad_accum {grad_accum}; pick a multiple"
        )
    return int(per)
