"""One exception tree for every user-facing failure.

Each class also derives from the built-in type callers caught before the tree existed
(`ValueError`, `FileNotFoundError`, ...), so `except ValueError` keeps working. The CLI turns any
`SonotokError` into one line on stderr; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AudioInputError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DiskFullError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ModelOutputError",
    "SonotokError",
]


class SonotokError(Exception):
    """Base of every error caused by an input, a file, a model or a setting the user chose."""


class ConfigError(SonotokError, ValueError):
    """A configuration (model config, training YAML, command option) that cannot work."""


class AudioInputError(SonotokError, ValueError):
    """An input (file or array) that cannot be processed; the message says why and what to do."""


class ModelNotFoundError(SonotokError, FileNotFoundError):
    """A model id or folder that cannot be found locally or downloaded."""


class CheckpointError(SonotokError, ValueError):
    """A model or training checkpoint that is unreadable or does not match what loads it."""


class DataError(ConfigError):
    """Data (a dataset, manifest, source or pairing) that cannot be used as configured."""


class MissingDependencyError(SonotokError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra."""


class ModelOutputError(SonotokError, ValueError):
    """A model produced output that must not be written (NaN or infinite values)."""


class DiskFullError(SonotokError, OSError):
    """No space (or quota) left where outputs are written: nothing more can be written there.

    `errno` is ENOSPC or EDQUOT and `filename` the output being written; str() is the message.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()
