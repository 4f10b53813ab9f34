"""Audio sources in: ONE spec (`SourceSpec`) and ONE reader (`open_source`) for every place
sonotok reads audio data — training crops, enhancement mixes, evaluation, extraction, probes.

A source is
- a folder of audio files (searched recursively; `AUDIO_EXTENSIONS` is the one list),
- a glob (`clips/**/*.wav`) or a single audio file,
- a manifest: `.csv` / `.tsv` / `.jsonl` with a path column, or `.txt` with one path a line;
  relative paths are resolved against the manifest's folder,
- a Hugging Face dataset: a `save_to_disk` folder, data files (parquet/arrow/json/csv) or a
  data folder, or a hub id — optionally streamed, its first `max_items` items cached locally
  in stream order so they can be sampled at random and resumed exactly.

Every kind opens as a `datasets.Dataset` (a folder becomes `id` / `path` columns) whose audio
column `datasets` never decodes: cells — stored bytes, a path, or an already decoded array —
are decoded here, by the bounded decoder of `sonotok.core.audio` (no header can make a read
allocate more than a bounded multiple of the file's size), averaged to mono and resampled
with soxr, exactly like `sonotok encode`.
"""

from __future__ import annotations

import glob
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from sonotok.core.audio import (
    SAMPLE_RATE,
    AudioInputError,
    audio_info,
    check_sample_rate,
    check_wave,
    decode_bounded,
    resample,
    to_mono,
)
from sonotok.core.config import build
from sonotok.core.errors import ConfigError, DataError
from sonotok.core.jsonl import jsonl_rows

# THE audio extension list: every reader (encode's inputs, training folders, enhancement
# folders, eval, extraction) finds files by it. soundfile (libsndfile) decodes all of them.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
MANIFEST_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".txt")

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
SourceType = Literal["auto", "folder", "glob", "file", "manifest", "hf"]


# ---- the spec -----------------------------------------------------------------------------
@dataclass
class SourceSpec:
    """Where audio comes from; in YAML a mapping of these fields, or just the path.

    type: auto (default: told from the path), folder, glob, file (one audio file), manifest,
    or hf (a Hugging Face dataset: saved folder, data files/folder or hub id). `name` is the
    dataset configuration; `split` defaults to the only split, else "train". `audio_column`
    defaults to the `Audio` column, else a path column (PATH_COLUMNS); `id_column` to a usual
    id column (ID_COLUMNS). `label_from_folder`: a folder's first sub-folder is its `label`.
    `streaming` reads a dataset as a stream into a local cache of its first `max_items` items
    (max_items also caps any other source). `weight` is the source's share of a training mix.
    """

    path: str
    type: SourceType = "auto"
    split: str | None = None
    name: str | None = None
    audio_column: str | None = None
    id_column: str | None = None
    label_column: str | None = None
    label_from_folder: bool = False
    streaming: bool = False
    max_items: int | None = None
    weight: float = 1.0  # relative sampling weight among sources (the paper mixes domains)

    def __post_init__(self):
        if not str(self.path).strip():
            raise ConfigError("source path is empty; name a folder, file, glob or dataset")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ConfigError(f"source {self.path}: weight must be > 0, got {self.weight}")
        if self.streaming and self.type not in ("auto", "hf"):
            raise ConfigError(
                f"source {self.path}: streaming applies to type hf only (Hugging Face datasets), "
                f"not {self.type}"
            )
        if self.max_items is not None and self.max_items < 1:
            raise ConfigError(f"source {self.path}: max_items must be >= 1, got {self.max_items}")


_LEGACY_KEYS = {"dataset": "path", "column": "audio_column", "subset": "name"}


def source_spec(value: Any, where: str = "source") -> SourceSpec:
    """A SourceSpec from a path, a mapping of its fields (also the older enhancement form
    `{dataset: NAME_OR_PATH, split, column}`) or a SourceSpec; ConfigError naming `where`."""
    if isinstance(value, SourceSpec):
        return value
    if isinstance(value, (str, os.PathLike)):
        return SourceSpec(path=os.fspath(value))
    if isinstance(value, dict):
        values = {_LEGACY_KEYS.get(k, k): v for k, v in value.items()}
        if "dataset" in value:
            values.setdefault("type", "hf")
        return build(SourceSpec, values, where)
    raise ConfigError(
        f"{where}: expected a path or a mapping like {{path: DIR, weight: 1}}, got "
        f"{type(value).__name__} {value!r}"
    )


def source_specs(value: Any, where: str = "source") -> list[SourceSpec]:
    """One spec or a list of them (each as `source_spec` takes it)."""
    if isinstance(value, (list, tuple)):
        return [source_spec(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return [source_spec(value, where)]


# ---- listing ------------------------------------------------------------------------------
def is_audio_file(path: Path) -> bool:
    """A file whose extension is in AUDIO_EXTENSIONS (any case)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def find_audio_files(folder: Path) -> list[Path]:
    """The audio files below `folder`, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if is_audio_file(p) and p.is_file())


def files_dataset(root: Path, files: list[Path], class_from_folder: bool = False):
    """Audio files below `root` → a Dataset with columns `id` (path below root without
    extension), `path` (path below root, the audio column) and, with `class_from_folder`,
    `label` (the first sub-folder)."""
    from datasets import Dataset

    rel = [p.relative_to(root) for p in files]
    columns: dict[str, list] = {
        "id": [r.with_suffix("").as_posix() for r in rel],
        "path": [r.as_posix() for r in rel],
    }
    if class_from_folder:
        flat = [r for r in rel if len(r.parts) < 2]
        if flat:
            raise DataError(
                f"{root}: {flat[0]} is not inside a class folder; a folder-per-class tree needs "
                "FOLDER/<class>/<file> for every file"
            )
        columns["label"] = [r.parts[0] for r in rel]
    return Dataset.from_dict(columns)


def folder_dataset(folder: Path, class_from_folder: bool = False):
    """`files_dataset` of every audio file below `folder`; DataError if it holds none."""
    files = find_audio_files(folder)
    if not files:
        raise DataError(
            f"{folder}: holds no audio files ({', '.join(AUDIO_EXTENSIONS)}); point at the folder "
            "that contains them"
        )
    return files_dataset(folder, files, class_from_folder)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _is_data_folder(path: Path) -> bool:
    """A folder `load_dataset` reads: saved, parquet/arrow files, an audiofolder metadata
    file, or tables (csv/json) and no audio files."""
    if _is_saved_dataset(path):
        return True
    audio = tables = False
    for p in path.rglob("*"):
        suffix = p.suffix.lower()
        metadata = p.stem == "metadata" and suffix in DATA_FILE_BUILDERS  # an audiofolder
        if suffix in (".parquet", ".arrow") or metadata:
            return True
        audio = audio or suffix in AUDIO_EXTENSIONS
        tables = tables or suffix in DATA_FILE_BUILDERS
    return tables and not audio


def _looks_local(text: str) -> bool:
    return text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text


def source_type(spec: SourceSpec) -> str:
    """The kind of source `spec` names (its `type`, or told from the path when auto)."""
    if spec.type != "auto":
        return spec.type
    if spec.streaming:
        return "hf"
    path = Path(spec.path).expanduser()
    if path.is_dir():
        return "hf" if _is_data_folder(path) else "folder"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in AUDIO_EXTENSIONS:
            return "file"
        if suffix in MANIFEST_EXTENSIONS:
            return "manifest"
        if suffix in DATA_FILE_BUILDERS:
            return "hf"
        raise DataError(
            f"{spec.path}: cannot read {suffix!r} files as a source; pass a folder, an audio file "
            f"({', '.join(AUDIO_EXTENSIONS)}), a manifest ({', '.join(MANIFEST_EXTENSIONS)}), data "
            f"files ({', '.join(sorted(DATA_FILE_BUILDERS))}) or a dataset"
        )
    if glob.has_magic(spec.path):
        return "glob"
    if _looks_local(spec.path):
        raise DataError(f"{spec.path}: no such file or folder; check the path")
    return "hf"  # a hub id such as "openslr/librispeech_asr"


# ---- manifests ----------------------------------------------------------------------------
def read_manifest(path: Path):
    """A manifest file → a Dataset of its rows, as written (paths not resolved).

    .txt: one path a line (`#` comments) in a `path` column; .jsonl: one JSON object a line;
    .csv / .tsv: a header row, column types inferred except path and id columns (kept as text,
    so `001` stays `001`)."""
    from datasets import Dataset

    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            names = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
            return Dataset.from_dict({"path": names})
        if suffix == ".jsonl":
            rows = [row for _, row in jsonl_rows(path, path.read_text(encoding="utf-8"))]
            keys = list(dict.fromkeys(k for row in rows for k in row))
            return Dataset.from_dict({k: [row.get(k) for row in rows] for k in keys})
        import pandas as pd

        text = dict.fromkeys(PATH_COLUMNS + ID_COLUMNS + ("caption", "domain"), str)
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=text)
        return Dataset.from_pandas(frame, preserve_index=False)
    except DataError:
        raise
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as err:
        raise DataError(
            f"{path}: cannot be read as a {suffix} manifest ({type(err).__name__}: {err}); write "
            "one row per clip with a 'path' column"
        ) from None


def manifest_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a manifest (see `read_manifest`), missing values as None."""
    return read_manifest(Path(path)).to_list()


# ---- opening ------------------------------------------------------------------------------
def _pick_split(data, split: str | None, source: str):
    if not isinstance(data, dict):  # a DatasetDict / IterableDatasetDict is a dict of splits
        return data
    if split is None:
        if len(data) == 1:
            return next(iter(data.values()))
        split = "train" if "train" in data else None
    if split not in data:
        raise DataError(
            f"{source}: has splits {sorted(data)}; pick one with --split or `split:` "
            f"(got {split!r})"
        )
    return data[split]


def _open_files(spec: SourceSpec, kind: str):
    """folder / glob / file → (dataset, base folder, description, audio column)."""
    path = Path(spec.path).expanduser()
    if kind == "folder":
        if not path.is_dir():
            raise DataError(f"{spec.path}: no such folder; check the path")
        return folder_dataset(path, spec.label_from_folder), path, f"folder {path}", "path"
    if kind == "file":
        if not path.is_file():
            raise DataError(f"{spec.path}: no such file; check the path")
        return files_dataset(path.parent, [path]), path.parent, f"file {path}", "path"
    pattern = os.path.expanduser(spec.path)
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if is_audio_file(Path(p)))
    files = [p for p in files if p.is_file()]
    if not files:
        raise DataError(
            f"{spec.path}: matched no audio files ({', '.join(AUDIO_EXTENSIONS)}); check the "
            "pattern"
        )
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    root = Path(*parts[:fixed]) if fixed else Path(".")
    data = files_dataset(root, files, spec.label_from_folder)
    return data, root, f"files {spec.path}", "path"


def _open_manifest(spec: SourceSpec):
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise DataError(f"{spec.path}: no such manifest file; check the path")
    data = read_manifest(path)
    column = spec.audio_column or next((c for c in PATH_COLUMNS if c in data.column_names), None)
    if column not in data.column_names:
        raise DataError(
            f"{path}: no audio path column {'(' + repr(column) + ') ' if column else ''}among "
            f"{data.column_names}; add a 'path' column (relative to the manifest or absolute)"
        )
    missing = next((i for i, v in enumerate(data[column]) if not v), None)
    if missing is not None:
        raise DataError(
            f"{path}: row {missing + 1} has no audio path in column {column!r}; add a 'path' "
            "column (relative to the manifest or absolute)"
        )
    return data, path.parent, f"manifest {path}", column


def _open_hf(spec: SourceSpec):
    import datasets

    if spec.streaming:
        data = _open_stream(spec)
        extra = (spec.id_column, spec.label_column)
        column = spec.audio_column or next(c for c in data.column_names if c not in extra)
        return data, None, f"dataset {spec.path} (streamed, cached)", column
    path = Path(spec.path).expanduser()
    try:
        if path.is_dir() and _is_saved_dataset(path):
            data, base = datasets.load_from_disk(str(path)), path
        elif path.is_file():
            builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise DataError(
                    f"{spec.path}: cannot read {path.suffix!r} files as a dataset; use one of "
                    f"{sorted(DATA_FILE_BUILDERS)}, a folder or a hub id"
                )
            options = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
            data = datasets.load_dataset(builder, data_files=str(path), split=spec.split, **options)
            base = path.parent
        elif path.is_dir():
            data, base = datasets.load_dataset(str(path), name=spec.name, split=spec.split), path
        elif _looks_local(spec.path):
            raise DataError(f"{spec.path}: no such file or folder; check the path")
        else:
            data, base = datasets.load_dataset(spec.path, name=spec.name, split=spec.split), None
    except DataError:
        raise
    except Exception as err:  # unknown name, offline, bad folder: one message with the fix
        fix = (
            "pass a folder written by save_to_disk, data files, or a dataset id load_dataset "
            "accepts (download it first when offline)"
        )
        raise _dataset_error(spec.path, "opened", err, fix) from None
    data = _pick_split(data, spec.split, spec.path)
    return data, base, f"dataset {spec.path}", None  # the audio column: found by open_source


def _audio_like(feature) -> bool:
    from datasets import Audio

    if isinstance(feature, Audio):
        return True
    if isinstance(feature, dict):
        return "bytes" in feature or "array" in feature
    return getattr(feature, "dtype", None) in ("string", "large_string")


def find_audio_column(dataset, requested: str | None, source: str) -> str:
    """The column holding audio: `requested`, else the first `Audio` column, else a
    column with a usual name for audio (PATH_COLUMNS) holding paths or bytes."""
    from datasets import Audio

    features = dataset.features
    if requested is not None:
        if requested not in features:
            raise DataError(
                f"{source}: no column {requested!r}; columns are {list(features)}; "
                "name the one holding audio (--audio-column, or audio_column: in a config)"
            )
        return requested
    for name, feature in features.items():
        if isinstance(feature, Audio):
            return name
    for name in PATH_COLUMNS:
        if name in features and _audio_like(features[name]):
            return name
    raise DataError(
        f"{source}: no audio column found among {list(features)}; name it with --audio-column "
        "(audio_column: in a config)"
    )


def _stream_rows(path, name, split, audio_column, columns, max_items):
    """Rows of a streamed dataset in stream order, audio undecoded: the audio column (the
    requested one, else the first Audio or audio-like column) and `columns`."""
    import datasets

    stream = datasets.load_dataset(path, name, split=split, streaming=True)
    features = stream.features or {}
    if audio_column is None:
        audio_column = next((c for c, f in features.items() if isinstance(f, datasets.Audio)), None)
        audio_column = audio_column or next((c for c in PATH_COLUMNS if c in features), "audio")
    if isinstance(features.get(audio_column), datasets.Audio):
        stream = stream.cast_column(audio_column, datasets.Audio(decode=False))
    for i, row in enumerate(stream):
        if max_items is not None and i >= max_items:
            break
        yield {audio_column: row[audio_column], **{c: row[c] for c in columns}}


def _open_stream(spec: SourceSpec):
    """A streamed dataset cached locally (datasets' cache, keyed by path / name / split /
    columns / max_items), so it is sampled by position like any source and resumed exactly."""
    import datasets

    columns = [c for c in (spec.id_column, spec.label_column) if c]
    kwargs = dict(
        path=spec.path, name=spec.name, split=spec.split or "train",
        audio_column=spec.audio_column, columns=columns, max_items=spec.max_items,
    )  # fmt: skip
    try:
        return datasets.Dataset.from_generator(_stream_rows, gen_kwargs=kwargs)
    except Exception as err:  # unknown name, offline, missing column: one message with the fix
        fix = (
            "check the id, split and columns (an offline machine needs the cache of an earlier "
            "run with the same settings)"
        )
        raise _dataset_error(spec.path, "streamed", err, fix) from None


def _dataset_error(path: str, verb: str, err: Exception, fix: str) -> DataError:
    """The one line for a dataset `datasets` could not open or stream: its error, then the fix."""
    return DataError(
        f"{path}: cannot be {verb} as a Hugging Face dataset ({type(err).__name__}: {err}); {fix}"
    )


def _open_table(spec: SourceSpec):
    """(dataset, base folder, description, audio column or None: found by open_source)."""
    kind = source_type(spec)
    if kind in ("folder", "glob", "file"):
        return _open_files(spec, kind)
    return _open_manifest(spec) if kind == "manifest" else _open_hf(spec)


def _named_column(data, requested: str | None, flag: str, source: str) -> str | None:
    if requested is not None and requested not in data.column_names:
        raise DataError(
            f"{source}: no column {requested!r} for {flag}; columns are {data.column_names}"
        )
    return requested


def open_source(spec: SourceSpec | str | os.PathLike | dict, sample_rate: int = SAMPLE_RATE):
    """Open a source (a SourceSpec, or what `source_spec` takes) → an `AudioSource` whose items
    read as mono float32 at `sample_rate`. DataError naming the source when it cannot be
    opened, has no audio column, or holds no items; files are only listed here, not read."""
    from datasets import Audio

    spec = source_spec(spec)
    data, base, description, column = _open_table(spec)
    column = column or find_audio_column(data, spec.audio_column, spec.path)
    if isinstance(data.features[column], Audio):
        data = data.cast_column(column, Audio(decode=False))
    id_column = _named_column(data, spec.id_column, "id_column (--id-column)", spec.path)
    if id_column is None:
        ids = [c for c in ID_COLUMNS if c in data.features]
        id_column = next((c for c in ids if not isinstance(data.features[c], Audio)), None)
    label = spec.label_column or ("label" if spec.label_from_folder else None)
    label = _named_column(data, label, "label_column", spec.path)
    if spec.max_items is not None and len(data) > spec.max_items:
        data = data.select(range(spec.max_items))
    if len(data) == 0:
        raise DataError(f"{spec.path}: holds no audio items; point at a source with audio in it")
    return AudioSource(data, column, base, id_column, description, label, spec.weight, sample_rate)


def open_dataset(
    source: str | Path,
    split: str | None = None,
    subset: str | None = None,
    class_from_folder: bool = False,
):
    """(dataset, base folder for relative paths, description) of a source (see
    `open_source`), its audio column not yet prepared."""
    spec = SourceSpec(str(source), split=split, name=subset, label_from_folder=class_from_folder)
    return _open_table(spec)[:3]


def open_audio_source(
    source: str | Path,
    split: str | None = None,
    subset: str | None = None,
    audio_column: str | None = None,
    id_column: str | None = None,
    audio_extensions: tuple[str, ...] | None = None,
    class_from_folder: bool = False,
) -> AudioSource:
    """`open_source` with the command-line options of `sonotok extract` / `probe`.
    `audio_extensions` is accepted for older callers and must be AUDIO_EXTENSIONS (the one list)."""
    if audio_extensions is not None and tuple(audio_extensions) != AUDIO_EXTENSIONS:
        raise ValueError("audio_extensions: sonotok reads one list, sources.AUDIO_EXTENSIONS")
    spec = SourceSpec(
        path=str(source), split=split, name=subset, audio_column=audio_column,
        id_column=id_column, label_from_folder=class_from_folder,
    )  # fmt: skip
    return open_source(spec)


# ---- reading ------------------------------------------------------------------------------
def resolve_path(value: str | os.PathLike, base_dir: Path | None) -> Path:
    """A path from a manifest or dataset cell: relative ones are taken relative to `base_dir`
    (the manifest's or dataset's folder) unless only the working-directory one exists."""
    path = Path(value).expanduser()
    if path.is_absolute() or base_dir is None:
        return path
    inside = base_dir / path
    return inside if inside.exists() or not path.exists() else path


def _cell_target(value: Any, base_dir: Path | None, name: str):
    """An audio cell → (what soundfile opens, its size in bytes), or (array, rate) for an
    already decoded {"array", "sampling_rate"} cell."""
    if isinstance(value, dict) and value.get("array") is not None:
        data = np.asarray(value["array"], dtype=np.float32)
        rate = int(value["sampling_rate"])
        check_sample_rate(rate, name)
        return (data[:, None] if data.ndim == 1 else data), rate
    if isinstance(value, dict):
        raw, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        raw, path = value, None
    elif isinstance(value, (str, os.PathLike)) or value is None:
        raw, path = None, value
    else:
        raise AudioInputError(
            f"{name}: the audio column holds {type(value).__name__}, not audio (bytes, a path or "
            "an array); name the audio column"
        )
    if raw:
        return io.BytesIO(bytes(raw)), len(raw)
    if not path:
        raise AudioInputError(f"{name}: the audio cell is empty (no bytes, no path)")
    path = resolve_path(path, base_dir)
    if not path.is_file():
        raise AudioInputError(f"{name}: audio file {path} does not exist; check the path")
    return str(path), path.stat().st_size


def _what(target) -> str:
    return "its stored bytes" if isinstance(target, io.BytesIO) else str(target)


def _decode_cell(value: Any, base_dir: Path | None, name: str, out_rate: int):
    """An audio cell → (mono float32 at its own rate, that rate); AudioInputError naming `name`."""
    target, size = _cell_target(value, base_dir, name)
    if isinstance(target, np.ndarray):
        return to_mono(target), size
    what = name if isinstance(target, str) and target in name else f"{name}: {_what(target)}"
    mono, rate, _ = decode_bounded(target, what, size, mono=True, out_rate=out_rate)
    return mono, rate


def decode_audio(
    value: Any, sample_rate: int, base_dir: Path | None = None, name: str = "audio"
) -> tuple[torch.Tensor, float]:
    """One audio cell → (mono float32 wave (N,) at `sample_rate`, duration in seconds).

    Accepts {"bytes": ..., "path": ...} (an `Audio(decode=False)` cell), {"array",
    "sampling_rate"} (already decoded), raw bytes, or a path (relative paths are taken
    relative to `base_dir`). Raises AudioInputError naming `name`; the wave must hold one
    latent frame (see `check_wave`).
    """
    mono, rate = _decode_cell(value, base_dir, name, sample_rate)
    if mono.shape[0] == 0:
        raise AudioInputError(f"{name}: the audio holds no samples")
    wave = resample(mono, rate, sample_rate)
    check_wave(wave, name)
    return torch.from_numpy(wave), mono.shape[0] / rate


@dataclass
class AudioHandle:
    """One item opened for reading in spans (training crops): its rate, length and channel
    count from the header, then `read(start, count)` decodes only that span."""

    name: str
    rate: int
    frames: int
    channels: int
    target: Any  # a path, stored bytes, or the decoded mono array
    num_bytes: int

    def read(
        self, start: int = 0, count: int | None = None, out_rate: int | None = SAMPLE_RATE
    ) -> np.ndarray:
        """Frames [start, start + count) as mono float32 at the item's own rate (`out_rate`:
        the rate the caller converts to, which the size bound covers)."""
        if isinstance(self.target, np.ndarray):
            return self.target[start : None if count is None else start + count]
        if isinstance(self.target, bytes):
            source, what = io.BytesIO(self.target), f"{self.name}: its stored bytes"
        else:
            source, what = self.target, self.name
        data, _, _ = decode_bounded(
            source, what, self.num_bytes, mono=True, out_rate=out_rate, start=start, count=count
        )
        return data


def open_cell(value: Any, base_dir: Path | None, name: str, out_rate: int = SAMPLE_RATE):
    """An audio cell → an AudioHandle (only the header is read; AudioInputError naming `name`)."""
    target, size = _cell_target(value, base_dir, name)
    if isinstance(target, np.ndarray):
        return AudioHandle(name, size, target.shape[0], target.shape[1], to_mono(target), 0)
    what = name if isinstance(target, str) and target in name else f"{name}: {_what(target)}"
    rate, frames, channels = audio_info(target, what, size, out_rate=out_rate)
    if frames is None:  # the stream does not state its length: decode it whole, bounded
        mono, rate = _decode_cell(value, base_dir, name, out_rate)
        return AudioHandle(name, rate, mono.shape[0], channels, mono, size)
    if isinstance(target, io.BytesIO):
        target = target.getvalue()
    return AudioHandle(name, rate, frames, channels, target, size)


class AudioItem(NamedTuple):
    """One item of a source: mono float32 `wave` (N,) at the source's rate, the `id` it pairs
    by, the `name` messages use (its file, or dataset and row) and its other columns."""

    wave: torch.Tensor
    id: str
    name: str
    metadata: dict


def strip_audio_extension(text: str) -> str:
    """`spk1/u3.wav` → `spk1/u3`; text without an audio extension is kept."""
    path = Path(text)
    return path.with_suffix("").as_posix() if is_audio_file(path) else text


@dataclass
class AudioSource:
    """Random access to the audio items of one source: `len(source)`, `source[i]` → AudioItem
    (wave at `sample_rate`), `source.read(i, rate)`, `source.open(i)` for spans.

    `dataset` is a `datasets.Dataset` whose `audio_column` is not decoded; relative paths in
    it are resolved against `base_dir`; `id_column` / `label_column` name rows and labels."""

    dataset: Any
    audio_column: str
    base_dir: Path | None
    id_column: str | None
    description: str
    label_column: str | None = None
    weight: float = 1.0
    sample_rate: int = SAMPLE_RATE
    _views: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.dataset)

    def _value(self, column: str, index: int) -> Any:
        """One cell, reading only its column (rows may carry large audio bytes)."""
        if column not in self._views:
            self._views[column] = self.dataset.select_columns([column])
        return self._views[column][index][column]

    def cell(self, index: int) -> Any:
        """The undecoded audio cell of row `index`."""
        return self._value(self.audio_column, index)

    def _path(self, cell: Any) -> Path | None:
        if isinstance(cell, dict):
            cell = None if cell.get("bytes") or cell.get("array") is not None else cell.get("path")
        if isinstance(cell, (str, os.PathLike)) and cell:
            return resolve_path(cell, self.base_dir)
        return None

    def path(self, index: int) -> Path | None:
        """The audio file of row `index` (resolved), or None when the row stores the audio."""
        return self._path(self.cell(index))

    def item_id(self, index: int) -> str:
        """The id row `index` pairs by: its id column (an audio extension dropped), else its
        file path without extension, else the row number."""
        if self.id_column is not None:
            value = self._value(self.id_column, index)
            if value is not None:
                return strip_audio_extension(str(value))
        cell = self.cell(index)
        path = cell.get("path") if isinstance(cell, dict) else cell
        return strip_audio_extension(str(path)) if isinstance(path, str) and path else str(index)

    def _name(self, index: int, cell: Any) -> str:
        path = self._path(cell)
        if path is not None:
            return str(path)
        if self.id_column is not None:
            value = self._value(self.id_column, index)
            return f"{self.description} row {index} ({self.id_column}={value})"
        return f"{self.description} row {index}"

    def name(self, index: int) -> str:
        """How messages name row `index`: its file, or the dataset and row (and id)."""
        return self._name(index, self.cell(index))

    def metadata(self, index: int) -> dict:
        """Row `index`'s other columns (ids, labels, captions...)."""
        others = [c for c in self.dataset.column_names if c != self.audio_column]
        return dict(self.dataset.select_columns(others)[index]) if others else {}

    def open(self, index: int) -> AudioHandle:
        """Row `index` opened for span reads (header only); AudioInputError naming it."""
        cell = self.cell(index)
        return open_cell(cell, self.base_dir, self._name(index, cell), self.sample_rate)

    def read(self, index: int, sample_rate: int | None = None) -> np.ndarray:
        """Row `index` as mono float32 (N,) at `sample_rate` (default: the source's); raises
        AudioInputError naming it when unreadable, empty or non-finite."""
        rate = sample_rate or self.sample_rate
        cell = self.cell(index)
        name = self._name(index, cell)
        mono, sr = _decode_cell(cell, self.base_dir, name, rate)
        if mono.shape[0] == 0:
            raise AudioInputError(f"{name}: the audio holds no samples")
        wave = resample(mono, sr, rate)
        check_wave(wave, name, min_samples=1)
        return wave

    def __getitem__(self, index: int) -> AudioItem:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.description}: item {index} of {len(self)}")
        index %= len(self)
        wave = torch.from_numpy(self.read(index))
        return AudioItem(wave, self.item_id(index), self.name(index), self.metadata(index))


def row_name(source: AudioSource, index: int, row: dict) -> str:
    """How a row is named in messages: its id column if any, else its index."""
    if source.id_column is not None and row.get(source.id_column) is not None:
        return f"row {index} ({source.id_column}={row[source.id_column]})"
    return f"row {index}"


def expand_inputs(
    items: Iterable[str], extensions: tuple[str, ...] = AUDIO_EXTENSIONS
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files, folders (searched recursively) and globs → (file, relative output stem) pairs.

    Files from a folder keep their path below it, so outputs mirror the tree; files named
    directly keep their name. Returns the pairs and one message per argument that matched
    nothing (what a command prints as `error: ...` before going on with the rest).
    """
    pairs, problems = [], []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions
            )
            pairs += [(p, p.relative_to(path).with_suffix("")) for p in found]
            if not found:
                problems.append(f"{item}: folder has no {'/'.join(extensions)} files")
        elif path.is_file():
            pairs.append((path, Path(path.stem)))
        elif glob.has_magic(item):
            found = sorted(
                Path(p)
                for p in glob.glob(os.path.expanduser(item), recursive=True)
                if Path(p).is_file()
            )
            pairs += [(p, Path(p.stem)) for p in found]
            if not found:
                problems.append(f"{item}: pattern matched no files")
        else:
            problems.append(f"{item}: no such file or folder")
    return pairs, problems
