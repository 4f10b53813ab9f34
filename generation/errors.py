"""The generation package's user errors, in the one `SonotokError` tree."""

from __future__ import annotations

from typing import Any, TypeVar

from sonotok.core.config import dataclass_from_dict
from sonotok.core.errors import ConfigError, SonotokError

T = TypeVar("T")


class GenerationError(SonotokError, ValueError):
    """A problem the user can fix: bad prompt, bad settings, a model that does not fit."""


def typed_config(cls: type[T], data: Any, source: str) -> T:
    """`cls` from plain data with every key and type checked (sonotok.core.config), raising
    GenerationError naming `source` and the key."""
    try:
        return dataclass_from_dict(cls, data, source)
    except (ConfigError, GenerationError) as err:  # GenerationError: a __post_init__ check
        message = str(err)
        raise GenerationError(
            message if message.startswith(source) else f"{source}: {message}"
        ) from None
