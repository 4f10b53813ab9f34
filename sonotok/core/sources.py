"""Audio datasets in: a Hugging Face dataset (saved folder, data folder or hub id) or a
folder of audio files, read row by row with the audio decoded by soundfile.

Audio columns are cast to `Audio(decode=False)` so `datasets` never decodes them itself:
we read the stored bytes or path with soundfile (any format libsndfile reads), average
channels and resample to the model rate with soxr, exactly like `sonotok encode`.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sonotok.core.audio import (
    AudioInputError,
    atomic_path,
    check_sample_rate,
    check_wave,
    decode_bounded,
    resample,
    to_mono,
)
from sonotok.tokenizer.config import ConfigError

DATA_FILE_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
PATH_COLUMNS = ("audio", "path", "file", "filename", "audio_path")
ID_COLUMNS = ("id", "key", "utt_id", "file_id", "filename", "path")


@dataclass
class AudioSource:
    """A dataset whose rows hold audio: `dataset` (a `datasets.Dataset` with its audio
    column not decoded), the name of that column, the folder relative paths in it are
    resolved against, and the column that names rows in messages (or None)."""

    dataset: Any
    audio_column: str
    base_dir: Path | None
    id_column: str | None
    description: str


def folder_dataset(folder: Path, extensions: tuple[str, ...], class_from_folder: bool = False):
    """Audio files below `folder` (recursively, sorted) → a Dataset with columns
    `id` (path below the folder without extension), `path` (path below the folder, the
    audio column) and, with `class_from_folder`, `label` (the first sub-folder)."""
    from datasets import Dataset

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise ConfigError(
            f"{folder}: holds no audio files ({', '.join(extensions)}); point at the folder that "
            "contains them"
        )
    rel = [p.relative_to(folder) for p in files]
    columns: dict[str, list] = {
        "id": [r.with_suffix("").as_posix() for r in rel],
        "path": [r.as_posix() for r in rel],
    }
    if class_from_folder:
        flat = [r for r in rel if len(r.parts) < 2]
        if flat:
            raise ConfigError(
                f"{folder}: {flat[0]} is not inside a class folder; a folder-per-class tree needs "
                "FOLDER/<class>/<file> for every file"
            )
        columns["label"] = [r.parts[0] for r in rel]
    return Dataset.from_dict(columns)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _pick_split(data, split: str | None, source: str):
    from datasets import DatasetDict

    if not isinstance(data, DatasetDict):
        return data
    if split is None:
        if len(data) == 1:
            return next(iter(data.values()))
        split = "train" if "train" in data else None
    if split not in data:
        raise ConfigError(
            f"{source}: has splits {sorted(data)}; pick one with --split (got {split!r})"
        )
    return data[split]


def open_dataset(
    source: str | Path,
    split: str | None = None,
    subset: str | None = None,
    audio_extensions: tuple[str, ...] = (),
    class_from_folder: bool = False,
):
    """(dataset, base folder for relative paths, description) for a folder of audio files,
    a `save_to_disk` folder, a local data folder/file `load_dataset` understands, or a hub id."""
    import datasets

    path = Path(source).expanduser()
    if path.is_dir() and _is_saved_dataset(path):
        data = _pick_split(datasets.load_from_disk(str(path)), split, str(source))
        return data, path, f"saved dataset {path}"
    if (
        path.is_dir()
        and audio_extensions
        and any(p.suffix.lower() in audio_extensions for p in path.rglob("*") if p.is_file())
    ):
        if not any(
            p.suffix.lower() in (".parquet", ".arrow", ".csv", ".json", ".jsonl")
            for p in path.rglob("*")
        ):
            return folder_dataset(path, audio_extensions, class_from_folder), path, f"folder {path}"
    if path.is_file():
        builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ConfigError(
                f"{source}: cannot read {path.suffix!r} files as a dataset; use one of "
                f"{sorted(DATA_FILE_BUILDERS)}, a folder or a hub id"
            )
        options = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        data = datasets.load_dataset(builder, data_files=str(path), split=split, **options)
        base = path.parent
    elif path.is_dir():
        data = datasets.load_dataset(str(path), name=subset, split=split)
        base = path
    elif str(source).startswith(("/", ".", "~")) or str(source).count("/") > 1:
        raise ConfigError(f"{source}: no such file or folder; check the path")
    else:
        try:
            data = datasets.load_dataset(str(source), name=subset, split=split)
        except (FileNotFoundError, ConnectionError, OSError) as err:
            raise ConfigError(
                f"{source}: no such local folder, and it cannot be loaded from the Hugging Face hub "
                f"({type(err).__name__}: {err}); check the path or id, or download the dataset first"
            ) from None
        base = None
    return _pick_split(data, split, str(source)), base, f"dataset {source}"


def find_audio_column(dataset, requested: str | None, source: str) -> str:
    """The column holding audio: `requested`, else the first `Audio` column, else a
    string column with a usual name for file paths."""
    from datasets import Audio

    features = dataset.features
    if requested is not None:
        if requested not in features:
            raise ConfigError(
                f"{source}: no column {requested!r}; columns are {list(features)}; "
                "pass the one holding audio with --audio-column"
            )
        return requested
    for name, feature in features.items():
        if isinstance(feature, Audio):
            return name
    for name in PATH_COLUMNS:
        if name in features and getattr(features[name], "dtype", None) in (
            "string",
            "large_string",
        ):
            return name
    raise ConfigError(
        f"{source}: no audio column found among {list(features)}; pass its name with --audio-column"
    )


def open_audio_source(
    source: str | Path,
    split: str | None = None,
    subset: str | None = None,
    audio_column: str | None = None,
    id_column: str | None = None,
    audio_extensions: tuple[str, ...] = (),
    class_from_folder: bool = False,
) -> AudioSource:
    """Open `source` and prepare its audio column for reading with `decode_audio`."""
    from datasets import Audio

    data, base, description = open_dataset(
        source, split, subset, audio_extensions, class_from_folder
    )
    column = find_audio_column(data, audio_column, str(source))
    if isinstance(data.features[column], Audio):
        data = data.cast_column(column, Audio(decode=False))
    if id_column is None:
        id_column = next(
            (
                c
                for c in ID_COLUMNS
                if c in data.features and not isinstance(data.features[c], Audio)
            ),
            None,
        )
    elif id_column not in data.features:
        raise ConfigError(
            f"{source}: no column {id_column!r} for --id-column; columns are {list(data.features)}"
        )
    return AudioSource(data, column, base, id_column, description)


def decode_audio(
    value: Any, sample_rate: int, base_dir: Path | None = None, name: str = "audio"
) -> tuple[torch.Tensor, float]:
    """One audio cell → (mono float32 wave (N,) at `sample_rate`, duration in seconds).

    Accepts {"bytes": ..., "path": ...} (an `Audio(decode=False)` cell), {"array",
    "sampling_rate"} (already decoded), or a path string (relative paths are taken
    relative to `base_dir`). Raises AudioInputError naming `name`.
    """
    if isinstance(value, dict) and value.get("array") is not None:
        data = np.asarray(value["array"], dtype=np.float32)
        data = data[:, None] if data.ndim == 1 else data
        sr = int(value["sampling_rate"])
        check_sample_rate(sr, name)
    else:
        if isinstance(value, dict):
            raw, path = value.get("bytes"), value.get("path")
        else:
            raw, path = None, value
        if raw is None and not path:
            raise AudioInputError(f"{name}: the audio cell is empty (no bytes, no path)")
        if raw is None:
            path = Path(path)
            if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
                path = base_dir / path  # relative to the dataset, as manifests write them
            if not path.is_file():
                raise AudioInputError(f"{name}: audio file {path} does not exist; check the path")
        target = io.BytesIO(raw) if raw is not None else str(path)
        size = len(raw) if raw is not None else path.stat().st_size
        what = "its stored bytes" if raw is not None else str(path)
        mono, sr, _ = decode_bounded(
            target, f"{name}: {what}", size, mono=True, out_rate=sample_rate
        )
        data = mono[:, None]
    if data.shape[0] == 0:
        raise AudioInputError(f"{name}: the audio holds no samples")
    wave = resample(to_mono(data), sr, sample_rate)
    check_wave(wave, name)
    return torch.from_numpy(wave), data.shape[0] / sr


def row_name(source: AudioSource, index: int, row: dict) -> str:
    """How a row is named in messages: its id column if any, else its index."""
    if source.id_column is not None and row.get(source.id_column) is not None:
        return f"row {index} ({source.id_column}={row[source.id_column]})"
    return f"row {index}"


def publish(tmp: Path, path: Path) -> None:
    """Move a finished temporary file onto `path` with the usual permissions (the
    temporary file was created private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_json(path: Path, value: Any) -> None:
    """Atomic JSON write (temp sibling + rename)."""
    tmp = atomic_path(path)
    try:
        tmp.write_text(json.dumps(value, indent=2, default=str) + "\n")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
