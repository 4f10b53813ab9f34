"""Local-folder / hub-id resolution, atomic file writes and the package's error type."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sonotok.core.errors import SonotokError
from sonotok.core.io import atomic_write as core_atomic_write


class GenerationError(SonotokError, ValueError):
    """A problem the user can fix: missing checkpoint, bad config, bad input."""


def resolve_pretrained(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """Return a local folder for `name_or_path`: the folder itself, or a hub snapshot.

    Raises `GenerationError` naming the path when neither exists or the hub is unreachable.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists() or name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise GenerationError(
            f"{name}: no such folder and not a hub id (owner/name); "
            "pass a folder written by save_pretrained or a Hugging Face repo id"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision))
    except Exception as err:  # offline, 404, auth: one clear message
        raise GenerationError(
            f"{name}: could not download from the Hugging Face hub ({type(err).__name__}: {err}); "
            "check the repo id and your connection, or pass a local folder"
        ) from err


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Call `write(tmp_path)` then rename the temp file onto `path` (sonotok.core.io's helper:
    umask permissions, no partial file left, DiskFullError on a full disk)."""
    core_atomic_write(path, lambda tmp: write(str(tmp)))


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write `data` as indented JSON, atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")

    atomic_write(path, _write)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object, raising `GenerationError` with the file name on failure."""
    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"{path}: missing; was this folder written by save_pretrained?")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise GenerationError(f"{path}: not valid JSON ({err}); re-save the model") from err
