"""What an evaluation runs over: audio files from a folder, a single file, a manifest, or a
Hugging Face dataset.

- A folder: every audio file below it. A file's id is its path relative to the folder, without
  extension (``spk1/utt3``); its domain is its first sub-folder when files sit in sub-folders.
- A manifest (``.csv``, ``.tsv`` or ``.jsonl``): one row per clip with a ``path`` column
  (also accepted: ``audio``, ``file``; relative paths are relative to the manifest), and
  optional ``id``, ``domain`` and ``caption`` columns.
- A single audio file.
- A Hugging Face dataset: a ``save_to_disk`` folder, a data folder (parquet/arrow) or a hub id,
  read with the tokenizer's dataset reader (audio cells decoded by soundfile, never by
  ``datasets``). Ids come from an ``id``-like column (else the audio path, else the row number),
  domains from a ``domain`` column, captions from a ``caption`` column.

Two sets are paired by id (e.g. ``clean/spk1/utt3.wav`` with ``enhanced/spk1/utt3.flac``).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sonotok.core.errors import SonotokError
from sonotok.tokenizer import load_audio

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")
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
        return self.source.dataset[self.row][self.source.audio_column]

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
            path = Path(cell["path"] if isinstance(cell, dict) else cell)
            if not path.is_absolute() and self.source.base_dir is not None and not path.exists():
                path = self.source.base_dir / path
            return file_digest(path)
        return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (renamed or moved files keep their digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_dataset(source: Path) -> bool:
    if source.is_dir():
        marks = ("state.json", "dataset_dict.json")
        return any((source / m).is_file() for m in marks) or any(
            p.suffix in (".parquet", ".arrow") for p in source.rglob("*")
        )
    # not a local path: a hub id such as "openslr/librispeech_asr"
    return not source.exists() and source.suffix == "" and len(source.parts) == 2


def _from_dataset(source: str, split: str | None) -> list[Item]:
    from sonotok.core.sources import open_audio_source
    from sonotok.tokenizer.config import ConfigError

    try:
        opened = open_audio_source(source, split=split)
    except ConfigError as err:
        raise EvaluationInputError(str(err)) from None
    data = opened.dataset
    columns = set(data.column_names)

    def column(name: str | None) -> list | None:
        return list(data[name]) if name and name in columns else None

    ids = column(opened.id_column)
    domains, captions = column("domain"), column("caption")
    audio = None if ids is not None else column(opened.audio_column)
    items = []
    for row in range(len(data)):
        if ids is not None:
            item_id = str(ids[row])
        else:
            cell = audio[row]
            path = cell.get("path") if isinstance(cell, dict) else cell
            item_id = _strip_audio_extension(str(path)) if path else str(row)
        items.append(
            Item(
                id=_strip_audio_extension(item_id),
                domain=str(domains[row]) if domains and domains[row] not in (None, "") else None,
                caption=str(captions[row]) if captions and captions[row] else None,
                source=opened,
                row=row,
            )
        )
    return items


def _strip_audio_extension(text: str) -> str:
    path = Path(text)
    return path.with_suffix("").as_posix() if path.suffix.lower() in AUDIO_EXTENSIONS else text


def discover(source: str | Path, split: str | None = None) -> list[Item]:
    """Items of a folder, manifest, single audio file or dataset, sorted by id.

    ``split`` picks the split of a dataset with several (default: the only one, or "train").
    """
    text = str(source)
    source = Path(source)
    if _is_dataset(source):
        items = _from_dataset(text, split)
    elif source.is_dir():
        items = _from_folder(source)
    elif source.is_file() and source.suffix.lower() in MANIFEST_EXTENSIONS:
        items = _from_manifest(source)
    elif source.is_file() and source.suffix.lower() in AUDIO_EXTENSIONS:
        items = [Item(id=source.stem, path=source)]
    elif source.exists():
        raise EvaluationInputError(
            f"{source}: not a folder, an audio file ({', '.join(AUDIO_EXTENSIONS)}) or a manifest "
            f"({', '.join(MANIFEST_EXTENSIONS)}); pass one of those"
        )
    else:
        raise EvaluationInputError(f"{source}: no such file or folder; check the path")
    if not items:
        raise EvaluationInputError(
            f"{source}: holds no audio files ({', '.join(AUDIO_EXTENSIONS)}); point at the folder "
            "that contains them"
        )
    counts = Counter(it.id for it in items)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        raise EvaluationInputError(
            f"{text}: several items share the id {duplicates[0]!r} (same path, different "
            "extension, or repeated manifest rows); keep one file per id"
        )
    return sorted(items, key=lambda it: it.id)


def _from_folder(folder: Path) -> list[Item]:
    items = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        rel = path.relative_to(folder)
        domain = rel.parts[0] if len(rel.parts) > 1 else None
        items.append(Item(id=rel.with_suffix("").as_posix(), path=path, domain=domain))
    return items


def _rows(manifest: Path) -> list[dict]:
    text = manifest.read_text(encoding="utf-8")
    if manifest.suffix.lower() == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise EvaluationInputError(
                    f"{manifest}:{lineno}: not valid JSON ({err.msg}); write one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise EvaluationInputError(f"{manifest}:{lineno}: expected a JSON object per line")
            rows.append(row)
        return rows
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" else ","
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def _from_manifest(manifest: Path) -> list[Item]:
    items = []
    for i, row in enumerate(_rows(manifest)):
        column = next((c for c in _PATH_COLUMNS if row.get(c)), None)
        if column is None:
            raise EvaluationInputError(
                f"{manifest}: row {i + 1} has no audio path; add a 'path' column "
                "(relative to the manifest or absolute)"
            )
        path = Path(str(row[column]))
        if not path.is_absolute():
            path = manifest.parent / path
        item_id = str(row.get("id") or Path(str(row[column])).with_suffix("").as_posix())
        items.append(
            Item(
                id=item_id,
                path=path,
                domain=str(row["domain"]) if row.get("domain") not in (None, "") else None,
                caption=str(row["caption"]) if row.get("caption") not in (None, "") else None,
            )
        )
    return items


def read_captions(path: str | Path) -> dict[str, str]:
    """Captions keyed by item id from a manifest with ``id`` (or ``path``) and ``caption``."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in MANIFEST_EXTENSIONS:
        raise EvaluationInputError(
            f"{path}: not a caption file; pass a .csv, .tsv or .jsonl with 'id' and 'caption' columns"
        )
    captions = {}
    for i, row in enumerate(_rows(path)):
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
