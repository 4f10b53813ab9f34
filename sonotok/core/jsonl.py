"""JSON Lines in: the one reader of `.jsonl` manifests (audio sources, prompt files).

Standard library only, so that light modules (the prompt-file reader the CLI uses) can read
manifests without importing torch or datasets.
"""

from __future__ import annotations

import json
import os

from .errors import DataError


def jsonl_rows(
    path: str | os.PathLike,
    text: str,
    error: type[Exception] = DataError,
    hint: str = "per line",
) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of `text`, the contents of `path`. A line
    that is not a JSON object raises `error` naming `path`:line; `hint` ends the message for a
    line holding JSON of another kind (e.g. 'such as {"caption": ...}')."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(
                f"{path}:{lineno}: not valid JSON ({err.msg}); write one JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise error(f"{path}:{lineno}: expected a JSON object {hint}")
        rows.append((lineno, row))
    return rows
