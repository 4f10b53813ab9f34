"""What an evaluation runs over: audio files from a folder, a single file, a manifest, or a
Hugging Face dataset.

- A folder: every audio file below it. A file's id is its path relative to the folder, without
  extension (``spk1/utt3``); its domain is its first sub-folder when files sit in sub-folders.
- A manifest (``.csv``, ``.tsv`` or ``.jsonl``): one row per clip with a ``path`` column
  (also accepted: ``audio``, ``file``; relative paths are relative to the manifest), and
  optional ``id``, ``domain`` and ``caption`` columns.
- A single audio file.
- A Hugging Face dataset: a ``save_to_disk`` folder, a data folder (parquet/arrow) or a hub id
  (audio cells decoded by the core's bounded decoder, never by ``datasets``). Ids come from an
  ``id``-like column (else the audio path, else the row number), domains from a ``domain``
  column, captions from a ``caption`` column.
- Anything else `sonotok.core.sources` opens (a glob, a ``.txt`` list of paths): every source
  kind and the audio extension list are the core's, the same for every command.

Two sets are paired by id (e.g. ``clean/spk1/utt3.wav`` with ``enhanced/spk1/utt3.flac``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sonotok.core.audio import load_audio
from sonotok.core.errors import ConfigError, SonotokError
from sonotok.core.sources import (
    AUDIO_EXTENSIONS,
    AudioSource,
    SourceSpec,
    manifest_rows,
    open_source,
    resolve_path,
    source_type,
    strip_audio_extension,
)

__all__ = ["AUDIO_EXTENSIONS", "EvaluationInputError", "Item", "discover", "pair", "read_captions"]
MANIFEST_EXTENSIONS = (".csv", ".tsv", ".jsonl")
_PATH_COLUMNS = ("path", "audio", "file")


class EvaluationInputError(SonotokError, ValueError):
    """A dataset, manifest or pairing a user passed cannot be evaluated; the message says why
    and what to do."""


@dataclass(frozen=True)
class Item:
    """One clip: a stable id for pairing, where its audio is, and optional domain and caption.

    The audio is a file (``path``) or row ``row`` of a dataset (``source``, an
    ``AudioSource`` of ``sonotok.core.sources``), read when needed.
    """

    id: str
    path: Path | None = None
    domain: str | None = None
    caption: str | None = None
    source: Any = None
    row: int | None = None

    @property
    def name(self) -> str:
        """How messages and reports name the item: its file, or dataset and row."""
        if self.path is not None:
            return str(self.path)
        return f"{self.source.description} row {self.row} (id {self.id})"

    def _cell(self):
        return self.source.cell(self.row)

    def load(self, sample_rate: int) -> torch.Tensor:
        """Mono float32 wave (N,) at ``sample_rate``; AudioInputError naming the item."""
        if self.path is not None:
            return load_audio(self.path, sample_rate)
        from sonotok.core.sources import decode_audio

        return decode_audio(self._cell(), sample_rate, self.source.base_dir, self.name)[0]

    def digest(self) -> str:
        """sha256 of the stored audio bytes (the embedding cache key)."""
        if self.path is not None:
            return file_digest(self.path)
        cell = self._cell()
        h = hashlib.sha256()
        if isinstance(cell, dict) and cell.get("bytes") is not None:
            h.update(cell["bytes"])
        elif isinstance(cell, dict) and cell.get("array") is not None:
            h.update(torch.as_tensor(cell["array"]).float().numpy().tobytes())
            h.update(str(cell.get("sampling_rate")).encode())
        else:
            path = cell["path"] if isinstance(cell, dict) else cell
            return file_digest(resolve_path(path, self.source.base_dir))
        return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (renamed or moved files keep their digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _items(opened: AudioSource, kind: str) -> list[Item]:
    """One Item per row of an opened source: files by path, stored audio by (source, row).
    A folder's (or glob's) first sub-folder is the domain; elsewhere a `domain` column."""
    data = opened.dataset
    columns = set(data.column_names)

    def column(name: str | None) -> list | None:
        return list(data[name]) if name and name in columns else None

    ids = column(opened.id_column)
    domains, captions = column("domain"), column("caption")
    dtype = getattr(data.features[opened.audio_column], "dtype", None)
    paths = column(opened.audio_column) if dtype in ("string", "large_string") else None
    items = []
    for row in range(len(data)):
        item_id = _text(ids[row]) if ids is not None else None
        item_id = strip_audio_extension(item_id) if item_id is not None else opened.item_id(row)
        if kind in ("folder", "glob"):
            parts = item_id.split("/")
            domain = parts[0] if len(parts) > 1 else None
        else:
            domain = _text(domains[row]) if domains else None
        caption = _text(captions[row]) if captions else None
        if paths is not None:
            items.append(Item(item_id, resolve_path(paths[row], opened.base_dir), domain, caption))
        else:
            items.append(Item(item_id, None, domain, caption, opened, row))
    return items


def discover(source: str | Path, split: str | None = None) -> list[Item]:
    """Items of a folder, manifest, single audio file or dataset (any source of
    `sonotok.core.sources`), sorted by id.

    ``split`` picks the split of a dataset with several (default: the only one, or "train").
    """
    text = str(source)
    try:
        spec = SourceSpec(path=text, split=split)
        kind = source_type(spec)
        opened = open_source(SourceSpec(path=text, type=kind, split=split))
    except ConfigError as err:  # the core's DataError: names the source and the fix
        raise EvaluationInputError(str(err)) from None
    items = _items(opened, kind)
    counts = Counter(it.id for it in items)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        raise EvaluationInputError(
            f"{text}: several items share the id {duplicates[0]!r} (same path, different "
            "extension, or repeated manifest rows); keep one file per id"
        )
    return sorted(items, key=lambda it: it.id)


def read_captions(path: str | Path) -> dict[str, str]:
    """Captions keyed by item id from a manifest with ``id`` (or ``path``) and ``caption``."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in MANIFEST_EXTENSIONS:
        raise EvaluationInputError(
            f"{path}: not a caption file; pass a .csv, .tsv or .jsonl with 'id' and 'caption' columns"
        )
    try:
        rows = manifest_rows(path)
    except ConfigError as err:
        raise EvaluationInputError(str(err)) from None
    captions = {}
    for i, row in enumerate(rows):
        path_value = next((row[c] for c in _PATH_COLUMNS if row.get(c)), None)
        key = row.get("id") or (
            Path(str(path_value)).with_suffix("").as_posix() if path_value else None
        )
        if not key or not row.get("caption"):
            raise EvaluationInputError(
                f"{path}: row {i + 1} needs an 'id' (or 'path') and a 'caption' value"
            )
        captions[str(key)] = str(row["caption"])
    return captions


def pair(
    anchors: Sequence[Item], others: Sequence[Item], others_name: str
) -> tuple[list[tuple[Item, Item]], list[tuple[str, str]]]:
    """Match ``others`` to ``anchors`` by id.

    Returns:
        (pairs, errors): matched (anchor, other) pairs, and (file, message) for every anchor
        without a partner.
    """
    by_id = {it.id: it for it in others}
    pairs, errors = [], []
    for anchor in anchors:
        other = by_id.get(anchor.id)
        if other is None:
            errors.append(
                (
                    anchor.name,
                    f"no {others_name} file with id {anchor.id!r}; name it with the same relative "
                    "path (any audio extension) or add it to the manifest",
                )
            )
        else:
            pairs.append((anchor, other))
    return pairs, errors
