"""The official SQCodec release: names, file layout and strict loading.

The hub repository `zhai-lw/SQCodec` holds `weights/<config>.v0/<module>.pt` for the seven
configs, one plain state dict per module (`MODULES`). We read each with
`torch.load(weights_only=True)` (nothing else is unpickled) and load it strictly: a missing or
extra key, or a shape that does not fit the config, is a CheckpointError naming the file.

Names (see `parse_name`):
- `zhai-lw/SQCodec:<config>` — the hub repository (only that config's files are fetched);
- `sqcodec-<alias>` — e.g. `sqcodec-6kbps`, `sqcodec-0.75kbps`, `sqcodec-12kbps-24khz`
  (`sqcodec` alone is 6kbps);
- `<folder>:<config>` — a local copy of the hub repository (`<folder>/weights/<config>.v0/`),
  or a folder holding the five `.pt` files directly;
- `<folder>/<config>.v0` — such a folder named as the reference caches it
  (`~/.cache/sq_codec/6kbps.v0`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from sonotok.core.errors import ConfigError, ModelNotFoundError
from sonotok.core.hub import load_strict, read_torch_weights, resolve

from .configs import OFFICIAL_CONFIGS, SQCodecConfig, official_config
from .model import MODULES, SQCodecModel

__all__ = ["ALIASES", "OFFICIAL_REPO", "load_official", "official_folder", "parse_name"]

OFFICIAL_REPO = "zhai-lw/SQCodec"
VERSION = "v0"  # the release's weight folder suffix: weights/<config>.v0/
DEFAULT_CONFIG = "6kbps"

#: Short names → official config (also accepted: `sqcodec-<config>` with `_` or `-`).
ALIASES = {
    "sqcodec": DEFAULT_CONFIG,
    "sqcodec-0.75kbps": "0k75bps",
    "sqcodec-1.5kbps": "1k5bps",
    **{f"sqcodec-{name.replace('_', '-')}": name for name in OFFICIAL_CONFIGS},
}


def _alias(name: str) -> str | None:
    return ALIASES.get(name.strip().lower().replace("_", "-"))


def _split_config(name: str) -> tuple[str, str] | None:
    """'<prefix>:<config>' → (prefix, config), if the suffix is a plausible config name."""
    match = re.fullmatch(r"(.+):([\w.-]+)", name)
    return (match.group(1), match.group(2)) if match else None


def _is_repo(name: str) -> bool:
    return name.rstrip("/").lower() == OFFICIAL_REPO.lower()


def _release_folder(path: Path) -> bool:
    """A folder holding the five module files directly (e.g. `6kbps.v0`)."""
    return path.is_dir() and (path / "encoder.pt").is_file()


def claims(name: str) -> bool:
    """Whether `name` is one of the names above (a sonotok folder with config.json is not)."""
    if _alias(name) is not None or _is_repo(name):
        return True
    split = _split_config(name)
    if split is not None:
        prefix = split[0]
        return _is_repo(prefix) or Path(prefix).expanduser().is_dir()
    path = Path(name).expanduser()
    return path.name.endswith(f".{VERSION}") and _release_folder(path)


def parse_name(name: str) -> tuple[str, str]:
    """An official name → (hub id or local folder, config name); the config is checked."""
    alias = _alias(name)
    if alias is not None:
        return OFFICIAL_REPO, alias
    if _is_repo(name):
        return OFFICIAL_REPO, DEFAULT_CONFIG
    split = _split_config(name)
    if split is not None:
        source, config = split
        source = OFFICIAL_REPO if _is_repo(source) else source
    else:
        path = Path(name).expanduser()
        source, config = str(path), path.name.removesuffix(f".{VERSION}")
    if config not in OFFICIAL_CONFIGS:
        raise ConfigError(
            f"{name}: SQCodec has no config {config!r}; choose one of {sorted(OFFICIAL_CONFIGS)} "
            f"(e.g. {OFFICIAL_REPO}:6kbps or sqcodec-6kbps)"
        )
    return source, config


def official_folder(source: str | os.PathLike, config: str, **hub_options) -> Path:
    """The local folder holding `<module>.pt` for `config`, fetching only those from the hub."""
    pattern = f"weights/{config}.{VERSION}/*.pt"
    root = resolve(source, allow_patterns=[pattern], **hub_options)
    for folder in (root / "weights" / f"{config}.{VERSION}", root):
        if _release_folder(folder):
            return folder
    raise ModelNotFoundError(
        f"{source}: no SQCodec weights for {config!r}: expected "
        f"{root / 'weights' / f'{config}.{VERSION}'}/encoder.pt (the hub layout of {OFFICIAL_REPO})"
        f" or the {len(MODULES)} files {list(MODULES)} (.pt) in {root}"
    )


def load_official(folder: Path, config: SQCodecConfig) -> SQCodecModel:
    """Build on the meta device and load every module file strictly (weights_only=True)."""
    with torch.device("meta"):
        model = SQCodecModel(config)
    model.to_empty(device="cpu")
    for name in MODULES:
        file = folder / f"{name}.pt"
        if not file.is_file():
            raise ModelNotFoundError(
                f"{folder}: {file.name} is missing; an SQCodec release folder holds "
                f"{[m + '.pt' for m in MODULES]} — download the whole weights/<config>.v0 folder"
            )
        load_strict(getattr(model, name), read_torch_weights(file), str(file))
    return model.eval()


def config_for(name: str, config: SQCodecConfig | None) -> SQCodecConfig:
    """The config to build for official config `name`: `config` if given (e.g. a reduced
    test model in the official layout), else the official one."""
    return config if config is not None else official_config(name)
