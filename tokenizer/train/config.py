"""The training-config helpers the tokenizer recipes (and older imports) use, from the core.

`load_config(MyConfig, "run.yaml", ["optim.lr=1e-4"])` is `sonotok.core.config.load_yaml_config`:
the one YAML loader of every recipe, every key and value checked before any work starts.
"""

from __future__ import annotations

from sonotok.core.config import apply_overrides, build, dump_yaml, to_dict
from sonotok.core.config import load_yaml_config as load_config
from sonotok.core.errors import ConfigError
from sonotok.core.training import per_device_batch

__all__ = [
    "ConfigError",
    "apply_overrides",
    "build",
    "load_config",
    "to_dict",
    "dump_yaml",
    "per_device_batch",
]
