"""Typed configs from plain data: one checker for every config dataclass and every config file.

A config dataclass (a model's config.json, a training YAML section) is built from a mapping by
`dataclass_from_dict`, which checks every key against the fields and every value against its
annotation before anything is constructed, so `depth: "six"`, an unknown key, a JSON list where
an object belongs, or a NaN learning rate fails at once with the file and the dotted key — not
as a traceback deep inside a model or an optimizer.

Supported annotations: bool, int, float (ints accepted; NaN and ±inf refused), str, None /
Optional[...], Literal[...], list[T], tuple[T, ...], dict[str, T], and nested dataclasses (also
inside lists). A dataclass's `__post_init__` may raise `ConfigError` for cross-field checks; the
`require_*` helpers and `check_numbers` are the shared range checks those use.

`load_yaml_config(cls, path, overrides)` is the one loader of every training recipe's YAML file
and its `--set key=value` overrides; a config class lists keys that moved in a `RENAMED`
class variable (old dotted key → where it is now), so an old file fails in one line naming
the new key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from .errors import ConfigError

T = TypeVar("T")

__all__ = [
    "apply_overrides",
    "build",
    "check_numbers",
    "convert",
    "dataclass_from_dict",
    "dump_yaml",
    "load_yaml_config",
    "read_json_object",
    "to_dict",
    "require_finite",
    "require_non_negative",
    "require_positive",
    "require_range",
]


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp) if a is not ...)
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _convert_union(value: Any, tp: Any, where: str) -> Any:
    options = get_args(tp)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{where}: must not be null; expected {_type_name(tp)}")
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return convert(value, option, where)
        except ConfigError as err:
            errors.append(str(err))
    if len(errors) == 1:
        raise ConfigError(errors[0])
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")


def _convert_literal(value: Any, tp: Any, where: str) -> Any:
    if isinstance(value, bool):  # YAML 1.1 reads no/off/yes/on as booleans
        spellings = ("no", "off", "false") if value is False else ("yes", "on", "true")
        value = next((c for c in get_args(tp) if c in spellings), value)
    if value not in get_args(tp):
        raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(tp))}")
    return value


def _convert_sequence(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list ({_type_name(tp)}), got {_describe(value)}")
    args = get_args(tp)
    if origin is tuple and args and args[-1] is not ...:
        if len(value) != len(args):
            raise ConfigError(
                f"{where}: expected {len(args)} items ({_type_name(tp)}), got {len(value)}"
            )
        return tuple(convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    item = args[0] if args else Any
    items = [convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _convert_scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"{where}: unsupported annotation {tp!r} in the config dataclass")


def convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against annotation `tp` and convert it (dicts → dataclasses, int → float).

    Raises ConfigError naming `where` (a dotted key) when the value does not fit."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where}: expected a mapping of {tp.__name__} fields, got {_describe(value)}"
            )
        return build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, tp, where)
    if origin is Literal:
        return _convert_literal(value, tp, where)
    if origin in (list, tuple):
        return _convert_sequence(value, tp, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        _, vt = get_args(tp) or (str, Any)
        return {str(k): convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    return _convert_scalar(value, tp, where)


def build(cls: type[T], values: dict, where: str = "") -> T:
    """A `cls` instance from a plain mapping, checking keys and types recursively.

    `where` is the dotted key of this mapping inside a larger config ("" at the top)."""
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names), key=str)
    prefix = f"{where}." if where else ""
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(prefix + str(k) for k in unknown)}; valid keys"
            f"{' under ' + where if where else ''}: {', '.join(names)}"
        )
    kwargs = {
        name: convert(values[name], hints[name], prefix + name) for name in names if name in values
    }
    missing = [
        prefix + f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing required config keys: {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        message = str(err)
        if where and message.startswith(where):
            raise ConfigError(message) from None
        raise ConfigError(f"{where or cls.__name__}: {message}") from None


def dataclass_from_dict(cls: type[T], data: Any, where: str) -> T:
    """`cls` from `data` read out of `where` (a file, or "file: section"): a non-mapping,
    an unknown key or a value of the wrong type is a ConfigError naming `where` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a JSON object of {cls.__name__} settings, got {_describe(data)}; "
            "the file is damaged or not a config of this model — re-save or re-download it"
        )
    try:
        return build(cls, data)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file that must hold an object (a config.json); ConfigError naming the file if not."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; is this a model folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); re-save or re-download it") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a JSON object (a mapping of settings), got {_describe(data)}; "
            "re-save or re-download the model"
        )
    return data


# ---- YAML recipes with --set overrides ------------------------------------------------------
def _parse_override(item: str) -> tuple[list[str], Any]:
    import yaml

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


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass an existing YAML file (see configs/)")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got {type(values).__name__}"
        )
    return values


def _refuse_old_keys(cls: type, values: dict, where: str) -> None:
    """ConfigError naming the new key for the first key of `cls.RENAMED` found in `values`."""
    for old, new in getattr(cls, "RENAMED", {}).items():
        if _has_key(values, old):
            raise ConfigError(
                f"{where}: {old} is an old key; use {new} (every recipe's YAML has the same "
                "train: and optim: sections, see configs/)"
            )


def _has_key(values: dict, dotted: str) -> bool:
    *parents, last = dotted.split(".")
    node: Any = values
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return isinstance(node, dict) and last in node


def load_yaml_config(
    cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None
) -> T:
    """`cls` from the YAML file at `path` (None: defaults only) and `--set` `overrides`,
    every key and value checked before anything runs. An empty section (`model:`) means its
    defaults; a key in `cls.RENAMED` fails with the key that replaced it."""
    values = _read_yaml(Path(path)) if path is not None else {}
    values = apply_overrides(values, list(overrides or []))
    where = str(path) if path is not None else "config"
    hints = get_type_hints(cls)
    for name, value in values.items():
        if value is None and dataclasses.is_dataclass(hints.get(name)):
            values[name] = {}
    _refuse_old_keys(cls, values, where)
    try:
        return build(cls, values)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


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
    """The resolved settings as YAML (written as config.yaml next to a run)."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)


# ---- numeric ranges -----------------------------------------------------------------------
def require_finite(value: float, where: str) -> float:
    """`value` if it is a real number (not NaN, not ±inf); ConfigError naming `where` if not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return value


def require_positive(value: float, where: str) -> float:
    """A finite value > 0 (for an integer: >= 1)."""
    require_finite(value, where)
    if value <= 0:
        bound = ">= 1" if isinstance(value, int) else "> 0"
        raise ConfigError(f"{where} must be {bound}, got {value!r}")
    return value


def require_non_negative(value: float, where: str) -> float:
    """A finite value >= 0 (0 usually means "off")."""
    require_finite(value, where)
    if value < 0:
        raise ConfigError(f"{where} must be >= 0, got {value!r}")
    return value


def require_range(
    value: float, where: str, low: float, high: float, *, open_low=False, open_high=False
) -> float:
    """A finite value in [low, high]; `open_low` / `open_high` exclude the end points."""
    require_finite(value, where)
    too_low = value <= low if open_low else value < low
    too_high = value >= high if open_high else value > high
    if too_low or too_high:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ConfigError(f"{where} must be in {interval}, got {value!r}")
    return value


def _values(settings: Any, name: str) -> Iterable[tuple[str, Any]]:
    value = getattr(settings, name)
    if isinstance(value, (list, tuple)):
        return [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [(name, value)]


def check_numbers(
    settings: Any,
    prefix: str,
    *,
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    fraction: Iterable[str] = (),
    below_one: Iterable[str] = (),
) -> None:
    """Range-check fields of a settings object (None values skipped; list items each).

    positive: > 0 (ints >= 1); non_negative: >= 0; fraction: in [0, 1]; below_one: in [0, 1)
    (Adam betas, decay rates). Errors name `prefix.field`."""
    checks = (
        (positive, require_positive),
        (non_negative, require_non_negative),
        (fraction, lambda v, w: require_range(v, w, 0, 1)),
        (below_one, lambda v, w: require_range(v, w, 0, 1, open_high=True)),
    )
    for names, check in checks:
        for name in names:
            for key, value in _values(settings, name):
                if value is not None:
                    check(value, f"{prefix}.{key}" if prefix else key)
