"""sonotok: a unified continuous audio tokenizer and the heads that run on its latents.

from sonotok import AudioTokenizer
tok = AudioTokenizer.from_pretrained("mispeech/dashengtokenizer")
latents = tok.encode(wave, sample_rate=sr)  # (T, 1280) at 25 Hz

Any tokenizer family (ours, the codec adapters): `sonotok.load_tokenizer(name_or_folder)`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "AudioInputError",
    "AudioTokenizer",
    "SonotokError",
    "Tokenizer",
    "TokenizerConfig",
    "__version__",
    "load_audio",
    "load_tokenizer",
    "write_audio",
]

# The public names are loaded on first use, so importing a light part of the package (the
# command-line parser, sonotok.core.options) does not import torch and the model code.
_PUBLIC = {name: "sonotok.tokenizer" for name in __all__ if name != "__version__"}
_PUBLIC.update(
    SonotokError="sonotok.core.errors",
    Tokenizer="sonotok.tokenizer.interface",
    load_tokenizer="sonotok.tokenizer.interface",
)

if TYPE_CHECKING:
    from sonotok.core.errors import SonotokError
    from sonotok.tokenizer import (
        AudioInputError,
        AudioTokenizer,
        TokenizerConfig,
        load_audio,
        write_audio,
    )
    from sonotok.tokenizer.interface import Tokenizer, load_tokenizer


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sonotok' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
