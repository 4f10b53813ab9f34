"""Training audio: folders, manifests and Hugging Face datasets → fixed-length 16 kHz crops.

Each global sample position (see `sampling`) owns a generator that picks a source by its
weight, an item uniformly within it and a crop offset. Items that cannot be read, are too
short or are silent are skipped — the position draws again from its own generator — and
counted, so a few bad files never stop a run and the data stays a pure function of
(seed, position). Only the cropped span of a file is read and resampled.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from sonotok.cli.tokenize import AUDIO_EXTENSIONS
from sonotok.core.audio import MIN_SAMPLES, SAMPLE_RATE, resample
from sonotok.core.errors import DataError

from ..config import ConfigError
from .sampling import position_rng, weighted_choice

__all__ = [
    "AudioCropDataset",
    "AudioSource",
    "SourceCheck",
    "check_data",
    "check_items",
    "check_sources",
    "collate_crops",
    "crop_loader",
    "open_source",
]


@dataclass
class SourceConfig:
    """One data source. `type`: folder (searched recursively), manifest (.txt one path per
    line, .jsonl or .csv/.tsv with a path column; relative paths are relative to the
    manifest), or hf (a `save_to_disk` folder, or a name/folder for `datasets.load_dataset`)."""

    path: str
    type: str = "folder"
    weight: float = (
        1.0  # relative sampling weight among sources (the paper mixes domains by weight)
    )
    audio_column: str = (
        "audio"  # hf / jsonl / csv: column with the audio (Audio feature, path or bytes)
    )
    split: str = "train"  # hf
    name: str | None = None  # hf: dataset configuration name
    # hf: read the dataset as a stream (no full download) into a local cache of its first
    # `max_items` items (None: all), which training then samples from like any dataset.
    streaming: bool = False
    max_items: int | None = None

    def __post_init__(self):
        if self.type not in ("folder", "manifest", "hf"):
            raise ConfigError(f"source type {self.type!r}: choose folder, manifest or hf")
        if not self.weight > 0:
            raise ConfigError(f"source {self.path}: weight must be > 0, got {self.weight}")
        if self.streaming and self.type != "hf":
            raise ConfigError(f"source {self.path}: streaming applies to type hf only")
        if self.max_items is not None and self.max_items < 1:
            raise ConfigError(f"source {self.path}: max_items must be >= 1, got {self.max_items}")


class AudioSource:
    """Random access to the audio items of one source: `len(source)`, `source.open(i)`."""

    def __init__(self, label: str, items, column: str | None = None):
        self.label, self.items, self.column = label, items, column

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, i: int) -> str:
        item = self.items[i] if self.column is None else None
        return str(item) if item is not None else f"{self.label}[{i}]"

    def open(self, i: int):
        """Item i as a soundfile.SoundFile, or a (array (N,) or (N, C), sample_rate) pair."""
        if self.column is None:
            return sf.SoundFile(str(self.items[i]))
        value = self.items[i][self.column]
        if isinstance(value, dict):
            if value.get("array") is not None:
                return np.asarray(value["array"], dtype=np.float32), int(value["sampling_rate"])
            if value.get("bytes"):
                return sf.SoundFile(io.BytesIO(value["bytes"]))
            value = value.get("path")
        if isinstance(value, (bytes, bytearray)):
            return sf.SoundFile(io.BytesIO(value))
        if isinstance(value, str) and value:
            return sf.SoundFile(value)
        raise ValueError(f"column {self.column!r} holds {type(value).__name__}, not audio")


def _manifest_paths(path: Path, column: str) -> list[Path]:
    root = path.parent
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        key = column if rows and column in rows[0] else "path"
        try:
            names = [row[key] for row in rows]
        except KeyError:
            raise ConfigError(f"{path}: every line needs a {column!r} (or 'path') field") from None
    elif suffix in (".csv", ".tsv"):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
        key = column if rows and column in rows[0] else "path"
        if rows and key not in rows[0]:
            raise ConfigError(
                f"{path}: no {column!r} or 'path' column; columns are {list(rows[0])}"
            )
        names = [row[key] for row in rows]
    else:
        names = [
            line.strip()
            for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    return [p if p.is_absolute() else root / p for p in map(Path, names)]


def _stream_items(path: str, name: str | None, split: str, column: str, max_items: int | None):
    """Yield {column: audio} rows of a streamed dataset, undecoded, in stream order."""
    import datasets

    stream = datasets.load_dataset(path, name, split=split, streaming=True)
    if isinstance(stream.features.get(column) if stream.features else None, datasets.Audio):
        stream = stream.cast_column(column, datasets.Audio(decode=False))
    for i, row in enumerate(stream):
        if max_items is not None and i >= max_items:
            break
        yield {column: row[column]}


def _open_stream(config: SourceConfig):
    """A streamed source cached locally (datasets' cache, keyed by path/split/column/max_items)
    so that it can be sampled by position like any other source and resumed exactly."""
    import datasets

    kwargs = dict(
        path=config.path, name=config.name, split=config.split,
        column=config.audio_column, max_items=config.max_items,
    )  # fmt: skip
    return datasets.Dataset.from_generator(_stream_items, gen_kwargs=kwargs)


def _open_hf(config: SourceConfig):
    import datasets

    path = Path(config.path).expanduser()
    try:
        if config.streaming:
            ds = _open_stream(config)
        elif path.is_dir() and any(
            (path / f).is_file() for f in ("dataset_dict.json", "state.json")
        ):
            ds = datasets.load_from_disk(str(path))
        else:
            ds = datasets.load_dataset(config.path, config.name, split=config.split)
    except Exception as err:  # unknown name, offline, bad folder: one message with the fix
        raise ConfigError(
            f"data source {config.path!r}: cannot open it as a Hugging Face dataset ({type(err).__name__}: {err}); "
            "pass a folder written by Dataset.save_to_disk or a dataset name/folder load_dataset accepts"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        if config.split not in ds:
            raise ConfigError(f"{config.path}: no split {config.split!r}; it has {list(ds)}")
        ds = ds[config.split]
    if config.audio_column not in ds.column_names:
        raise ConfigError(
            f"{config.path}: no column {config.audio_column!r}; set audio_column to one of {ds.column_names}"
        )
    if isinstance(ds.features[config.audio_column], datasets.Audio):
        # decode ourselves with soundfile: only the cropped span is read and resampled
        ds = ds.cast_column(config.audio_column, datasets.Audio(decode=False))
    return ds.select_columns([config.audio_column])


def open_source(config: SourceConfig) -> AudioSource:
    """Index a source (list its files or open its dataset); raises ConfigError if it is empty."""
    path = Path(config.path).expanduser()
    if config.type == "folder":
        if not path.is_dir():
            raise ConfigError(f"data source {path}: no such folder")
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
        )
        source = AudioSource(str(path), files)
    elif config.type == "manifest":
        if not path.is_file():
            raise ConfigError(f"data source {path}: no such manifest file")
        source = AudioSource(str(path), _manifest_paths(path, config.audio_column))
    else:
        source = AudioSource(config.path, _open_hf(config), config.audio_column)
    if len(source) == 0:
        raise ConfigError(
            f"data source {config.path}: holds no audio items ({'/'.join(AUDIO_EXTENSIONS)})"
        )
    return source


@dataclass
class Crop:
    """One training example: a (segment,) float32 wave and what was skipped to get it."""

    wave: torch.Tensor
    unreadable: int = 0
    silent: int = 0
    problems: list[str] = field(default_factory=list)


class AudioCropDataset(Dataset):
    """position → Crop of `segment` samples at 16 kHz (mono, channels averaged).

    Shorter items are zero-padded at the end; crops whose RMS is below `silence_db` dBFS
    are redrawn and counted as silent; unreadable, non-finite or too-short items are
    redrawn and counted as unreadable (with a message naming the item).
    """

    def __init__(
        self,
        sources: list[AudioSource],
        weights: list[float],
        segment: int,
        seed: int,
        silence_db: float = -60.0,
        max_attempts: int = 50,
        sample_rate: int = SAMPLE_RATE,
    ):
        self.sources, self.weights = sources, list(weights)
        self.segment, self.seed, self.sample_rate = segment, seed, sample_rate
        self.silence_rms = 10 ** (silence_db / 20)
        self.max_attempts = max_attempts

    def __len__(self) -> int:  # positions are unbounded; a large nominal length for tools that ask
        return 2**62

    def _read(self, source: AudioSource, index: int, rng: np.random.Generator) -> np.ndarray:
        """The cropped span of an item, mono at 16 kHz, at most `segment` samples."""
        opened = source.open(index)
        if isinstance(opened, tuple):
            data, sr = opened
            data = data[:, None] if data.ndim == 1 else data
            total = data.shape[0]
        else:
            with opened:
                sr, total = opened.samplerate, opened.frames
        if total * self.sample_rate < MIN_SAMPLES * sr:
            raise ValueError(f"too short ({total} samples at {sr} Hz)")
        need = math.ceil(self.segment * sr / self.sample_rate)
        start = int(rng.integers(0, max(1, total - need + 1)))
        if isinstance(opened, tuple):
            piece = data[start : start + need]
        else:
            with source.open(index) as f:
                f.seek(start)
                piece = f.read(need, dtype="float32", always_2d=True)
        if piece.shape[0] == 0:
            raise ValueError("no audio samples")
        wave = resample(piece.mean(axis=1).astype(np.float32), sr, self.sample_rate)
        if not np.isfinite(wave).all():
            raise ValueError("NaN or infinite samples")
        return wave[: self.segment]

    def __getitem__(self, position: int) -> Crop:
        crop = Crop(wave=torch.zeros(0))
        for attempt in range(self.max_attempts):
            rng = position_rng(self.seed, position, attempt)
            s = weighted_choice(rng, self.weights)
            source = self.sources[s]
            index = int(rng.integers(len(source)))
            try:
                wave = self._read(source, index, rng)
            except Exception as err:  # any decoding failure of user data: skip, count, report
                crop.unreadable += 1
                crop.problems.append(f"{source.describe(index)}: skipped, unreadable ({err})")
                continue
            if float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) < self.silence_rms:
                crop.silent += 1
                continue
            crop.wave = torch.from_numpy(np.pad(wave, (0, self.segment - wave.shape[0])))
            return crop
        raise DataError(
            f"training data: {self.max_attempts} draws in a row for sample position {position} "
            f"were unusable ({crop.unreadable} unreadable, {crop.silent} silent below "
            f"{20 * math.log10(self.silence_rms):.0f} dBFS); last problems: {crop.problems[-3:]}. "
            "Check data.sources (`--check` reports what they hold) or lower data.silence_db"
        )


CHECK_ITEMS = 32  # items read per source by --check (spread evenly over the source)
CHECK_TRIES = 3  # crops tried per item before calling it silent


@dataclass
class SourceCheck:
    """What a bounded look at one source found (`sonotok train ... --check`)."""

    label: str
    items: int  # items the source holds
    checked: int = 0
    usable: int = 0
    unreadable: int = 0
    silent: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.label}: {self.items} items; of {self.checked} checked, {self.usable} usable, "
            f"{self.unreadable} unreadable, {self.silent} silent"
        )

    def require_usable(self, silence_key: str | None = "data.silence_db") -> None:
        """DataError when no checked item could be trained on: training would only redraw."""
        if self.checked and not self.usable:
            lower = f" (or lower {silence_key})" if silence_key else ""
            raise DataError(
                f"data source {self.label}: none of the {self.checked} items checked is usable "
                f"({self.unreadable} unreadable, {self.silent} silent), e.g. {self.problems[:2]}; "
                f"point the source at readable audio with sound in it{lower}"
            )


def check_items(
    label: str, count: int, read, describe, silence_db: float, tries: int = CHECK_TRIES
) -> SourceCheck:
    """Read up to CHECK_ITEMS of `count` items, spread evenly, and count why some are unusable.

    `read(i, attempt)` returns item i as a mono float wave (a crop; up to `tries` attempts pick
    other crops before the item counts as silent) or raises when the item cannot be decoded;
    `describe(i)` names it. Bounded, so that a check of a million-file corpus takes seconds."""
    result = SourceCheck(label, count)
    threshold = 10 ** (silence_db / 20)
    picks = np.unique(np.linspace(0, count - 1, min(count, CHECK_ITEMS)).round().astype(int))
    for i in map(int, picks):
        result.checked += 1
        try:
            loud = any(
                float(np.sqrt(np.mean(np.square(read(i, attempt), dtype=np.float64)))) >= threshold
                for attempt in range(tries)
            )
        except Exception as err:  # any decoding failure of user data: counted, named
            result.unreadable += 1
            result.problems.append(f"{describe(i)}: unreadable ({str(err)[:120]})")
            continue
        if loud:
            result.usable += 1
        else:
            result.silent += 1
            result.problems.append(f"{describe(i)}: silent (below {silence_db:g} dBFS)")
    return result


def check_sources(
    sources: list[AudioSource], segment: int, silence_db: float = -60.0
) -> list[SourceCheck]:
    """`check_items` for each source, reading crops exactly as training does."""
    dataset = AudioCropDataset(sources, [1.0] * len(sources), segment, 0, silence_db)

    def reader(source: AudioSource):
        return lambda i, attempt: dataset._read(source, i, position_rng(0, i, attempt))

    return [check_items(s.label, len(s), reader(s), s.describe, silence_db) for s in sources]


def check_data(
    configs: list[SourceConfig], segment: int, silence_db: float = -60.0
) -> list[SourceCheck]:
    """Open every source and check a bounded sample of its items (what `--check` runs);
    DataError naming a source in which no checked item is usable."""
    checks = check_sources([open_source(c) for c in configs], segment, silence_db)
    for check in checks:
        check.require_usable()
    return checks


def collate_crops(crops: list[Crop]) -> dict:
    """Crops → {"audio": (B, segment), "unreadable": int, "silent": int, "problems": [str]}."""
    return {
        "audio": torch.stack([c.wave for c in crops]),
        "unreadable": sum(c.unreadable for c in crops),
        "silent": sum(c.silent for c in crops),
        "problems": [p for c in crops for p in c.problems],
    }


def crop_loader(
    sources: list[AudioSource], data, seed: int, per_device: int, accelerator, start_position: int
) -> torch.utils.data.DataLoader:
    """This process's DataLoader of training crops from global sample `start_position` on.

    `data` is a trainer's data settings (sources' weights, segment_samples, silence_db,
    max_attempts, num_workers); every process draws its own shard of the global positions.
    """
    from .sampling import ShardedPositionSampler

    dataset = AudioCropDataset(
        sources,
        [s.weight for s in data.sources],
        data.segment_samples,
        seed,
        data.silence_db,
        data.max_attempts,
    )
    sampler = ShardedPositionSampler(
        per_device, accelerator.num_processes, accelerator.process_index, start_position
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=per_device,
        sampler=sampler,
        num_workers=data.num_workers,
        collate_fn=collate_crops,
        pin_memory=accelerator.device.type == "cuda",
    )
