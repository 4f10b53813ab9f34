"""Prompt files for `sonotok generate --prompts`: plain text, or a manifest with ids and settings.

- Plain text (any other suffix, e.g. .txt): one prompt per line; blank lines and lines starting
  with `#` are skipped.
- Manifest: `.csv` / `.tsv` with a header row, or `.jsonl` (one JSON object per line), with the
  columns `caption` (or `prompt`), and optional `id` (the output file's name, so generated clips
  pair with references by id in `sonotok eval generate`), `seconds` and `seed`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sonotok.core import options
from sonotok.core.errors import ConfigError
from sonotok.core.jsonl import jsonl_rows

from .errors import GenerationError

MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")
TEXT_COLUMNS = ("caption", "prompt")
KNOWN_COLUMNS = ("id", *TEXT_COLUMNS, "seconds", "seed")


@dataclass
class PromptItem:
    """One prompt to generate: its text, and optionally an id, a duration and a seed."""

    prompt: str
    id: str | None = None
    seconds: float | None = None
    seed: int | None = None


def read_prompt_file(path: str | Path) -> list[PromptItem]:
    """The prompts of a text file or a manifest (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"{path}: prompts file not found")
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        return [
            PromptItem(line.strip())
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    rows = _json_rows(path, text) if suffix == ".jsonl" else _table_rows(path, text)
    items = [_item(path, where, row) for where, row in rows]
    _check_ids(path, items)
    if not items:
        raise GenerationError(f"{path}: the manifest has no rows; add one row per prompt")
    return items


def _table_rows(path: Path, text: str) -> list[tuple[str, dict]]:
    reader = csv.DictReader(
        text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ","
    )
    header = [c.strip() for c in reader.fieldnames or []]
    if not any(c in TEXT_COLUMNS for c in header):
        raise GenerationError(
            f"{path}: the header {header} has no 'caption' or 'prompt' column; a .csv/.tsv "
            "needs a header row such as 'id,caption,seconds,seed' (or use a .txt file with one "
            "prompt per line)"
        )
    return [
        (f"{path}:{i}", {(k or "").strip(): v for k, v in row.items()})
        for i, row in enumerate(reader, 2)
    ]


def _json_rows(path: Path, text: str) -> list[tuple[str, dict]]:
    hint = 'such as {"caption": ...}'
    return [(f"{path}:{i}", row) for i, row in jsonl_rows(path, text, GenerationError, hint)]


def _cell(row: dict, key: str) -> str | None:
    value = row.get(key)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _item(path: Path, where: str, row: dict) -> PromptItem:
    unknown = sorted(k for k in row if k and k not in KNOWN_COLUMNS)
    if unknown:
        raise GenerationError(f"{where}: unknown columns {unknown}; known: {list(KNOWN_COLUMNS)}")
    prompt = _cell(row, "caption") or _cell(row, "prompt")
    if prompt is None:
        raise GenerationError(f"{where}: empty 'caption'/'prompt'; give each row a text prompt")
    try:
        seconds = _cell(row, "seconds")
        seed = _cell(row, "seed")
        return PromptItem(
            prompt,
            id=_check_id(where, _cell(row, "id")),
            seconds=None if seconds is None else options.seconds(seconds),
            seed=None if seed is None else options.seed(seed),
        )
    except ConfigError as err:
        raise GenerationError(f"{where}: {err}") from None


def _check_id(where: str, item_id: str | None) -> str | None:
    """Ids name output files (sub-folders allowed): no absolute paths, `..` or backslashes."""
    if item_id is None:
        return None
    parts = PurePosixPath(item_id).parts
    if item_id.startswith("/") or "\\" in item_id or ".." in parts or "." in parts:
        raise GenerationError(
            f"{where}: id {item_id!r} is not a relative file name; use e.g. 'clip_001' or "
            "'speech/clip_001'"
        )
    return item_id


def _check_ids(path: Path, items: list[PromptItem]) -> None:
    ids = [it.id for it in items if it.id is not None]
    if ids and len(ids) != len(items):
        raise GenerationError(f"{path}: some rows have an id and some do not; give every row one")
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise GenerationError(f"{path}: id {item_id!r} appears twice; ids name the outputs")
        seen.add(item_id)
