"""Which model a command uses when no --model is given.

The official release when it is already on this machine (Hugging Face cache), else the
bundled sonotok-mini models shipped inside the package (sonotok/mini/), so every command
works offline right after `pip install`. Nothing here downloads.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

MINI_DIR = Path(__file__).parent / "mini"

OFFICIAL = {
    "tokenizer": "mispeech/dashengtokenizer",
    "denoiser": "mispeech/dasheng-denoiser",
    "generation": "mispeech/Dasheng-AudioGen",
}


@dataclass(frozen=True)
class DefaultModel:
    name: str  # hub id or folder, for from_pretrained
    why: str  # one line for the user: which model and why this one


def bundled(kind: str) -> Path:
    """The folder of the bundled sonotok-mini `kind` model (tokenizer, denoiser, generation)."""
    if kind not in OFFICIAL:
        raise ValueError(f"unknown model kind {kind!r}; choose from {sorted(OFFICIAL)}")
    return MINI_DIR / kind


def is_cached(repo_id: str) -> bool:
    """True if the hub repo is available offline in the local Hugging Face cache."""
    from sonotok.core.hub import cached

    return cached(repo_id) is not None


def default_model(kind: str) -> DefaultModel:
    """The model a command uses for `kind` when the user names none."""
    folder = bundled(kind)
    official = OFFICIAL[kind]
    if is_cached(official):
        return DefaultModel(official, f"{official} (official, from the local Hugging Face cache)")
    if not (folder / "config.json").is_file() and not (folder / "pipeline.json").is_file():
        return DefaultModel(official, f"{official} (official; no bundled model in this install)")
    return DefaultModel(
        str(folder),
        f"sonotok-mini {kind} (bundled, {folder}); {official} is not in the local Hugging Face "
        f"cache — pass --model {official} to download and use it",
    )


def model_or_default(name: str | None, kind: str) -> str:
    """`name` when given; otherwise the default for `kind`, and one line on stderr saying
    which model that is and why (what every command prints when --model is left out)."""
    if name is not None:
        return name
    chosen = default_model(kind)
    print(f"default {kind}: {chosen.why}", file=sys.stderr)
    return chosen.name
