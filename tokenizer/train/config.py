"""YAML training configs → typed dataclasses, with `--set key=value` overrides.

Generic on purpose: any trainer describes its settings as nested dataclasses and calls
`load_config(MyConfig, "run.yaml", ["train.lr=1e-4"])`. Every key is checked against the
dataclass fields and every value against its annotation *before any work starts*, so a
typo or a wrong type fails in a second with the dotted key, what was expected and the
valid choices — not an hour into a run.

Supported annotations: bool, int, float (ints accepted), str, None / Optional[...],
Literal[...], list[T], tuple[T, ...], dict[str, T], and nested dataclasses (also inside
lists). A dataclass's `__post_init__` may raise `ConfigError` for cross-field checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from ..config import ConfigError

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "apply_overrides",
    "build",
    "load_config",
    "to_dict",
    "dump_yaml",
    "require_positive",
    "per_device_batch",
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
        return (
            f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp) if a is not ...)}]"
        )
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against annotation `tp` and convert it (dicts → dataclasses, int → float)."""
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
                return _convert(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_describe(value)}")
    if origin is Literal:
        if isinstance(value, bool):  # YAML 1.1 reads no/off/yes/on as booleans
            spellings = ("no", "off", "false") if value is False else ("yes", "on", "true")
            value = next((c for c in get_args(tp) if c in spellings), value)
        if value not in get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"{where}: expected a list ({_type_name(tp)}), got {_describe(value)}"
            )
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not ...:
            if len(value) != len(args):
                raise ConfigError(
                    f"{where}: expected {len(args)} items ({_type_name(tp)}), got {len(value)}"
                )
            return tuple(
                _convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))
            )
        item = args[0] if args else Any
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        _, vt = get_args(tp) or (str, Any)
        return {str(k): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
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
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"{where}: unsupported annotation {tp!r} in the config dataclass")


def build(cls: type[T], values: dict, where: str = "") -> T:
    """A `cls` instance from a plain mapping, checking keys and types recursively."""
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names))
    prefix = f"{where}." if where else ""
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(prefix + str(k) for k in unknown)}; valid keys{' under ' + where if where else ''}: "
            f"{', '.join(names)}"
        )
    kwargs = {
        name: _convert(values[name], hints[name], prefix + name) for name in names if name in values
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
        raise ConfigError(
            message
            if where and message.startswith(where)
            else f"{where or cls.__name__}: {message}"
        ) from None


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
    """Raise ConfigError naming the first of `names` on `settings` that is below 1."""
    for name in names:
        if getattr(settings, name) < 1:
            raise ConfigError(f"{prefix}.{name} must be >= 1, got {getattr(settings, name)}")


def per_device_batch(global_batch: int, num_processes: int, grad_accum: int) -> int:
    """Samples per device and micro-step for a *global* batch; an uneven split is an error."""
    per = global_batch / (num_processes * grad_accum)
    if per != int(per):
        raise ConfigError(
            f"train.batch_size={global_batch} (global) is not divisible by "
            f"{num_processes} processes × grad_accum {grad_accum}; pick a multiple"
        )
    return int(per)
