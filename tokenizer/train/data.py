"""Training audio: any source of `sonotok.core.sources` → fixed-length 16 kHz crops.

`data.sources` entries are `SourceSpec`s (folders, globs, manifests, Hugging Face datasets,
streamed ones cached locally; `weight` sets the mix). Each global sample position (see
`sampling`) owns a generator that picks a source by its weight, an item uniformly within it
and a crop offset. Items that cannot be read, are too short or are silent are skipped — the
position draws again from its own generator — and counted, so a few bad files never stop a
run and the data stays a pure function of (seed, position). Only the cropped span of a file
is decoded (by the core's bounded decoder) and resampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from sonotok.core.audio import MIN_SAMPLES, SAMPLE_RATE, resample
from sonotok.core.errors import DataError
from sonotok.core.sources import AudioSource, SourceSpec
from sonotok.core.sources import open_source as open_core_source

from .sampling import position_rng, weighted_choice

SourceConfig = SourceSpec  # the name training configs have used for a data source

__all__ = [
    "AudioCropDataset",
    "AudioSource",
    "SourceCheck",
    "SourceConfig",
    "check_data",
    "check_items",
    "check_sources",
    "collate_crops",
    "crop_loader",
    "open_source",
]


def open_source(config: SourceConfig | str | dict) -> AudioSource:
    """Index a source (list its files or open its dataset, see `sonotok.core.sources`); no
    audio is read yet. DataError (a ConfigError) naming the source if it cannot be opened or
    holds no audio items."""
    return open_core_source(config, SAMPLE_RATE)


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
        """The cropped span of an item, mono at 16 kHz, at most `segment` samples: the header
        gives rate and length, then only the crop is decoded (bounded, see core.audio)."""
        item = source.open(index)
        sr, total = item.rate, item.frames
        if total * self.sample_rate < MIN_SAMPLES * sr:
            raise ValueError(f"too short ({total} samples at {sr} Hz)")
        need = math.ceil(self.segment * sr / self.sample_rate)
        start = int(rng.integers(0, max(1, total - need + 1)))
        piece = item.read(start, need, out_rate=self.sample_rate)
        if piece.shape[0] == 0:
            raise ValueError("no audio samples")
        wave = resample(piece, sr, self.sample_rate)
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
                name = source.name(index)
                reason = str(err).removeprefix(f"{name}: ")
                crop.problems.append(f"{name}: skipped, unreadable ({reason})")
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

    return [check_items(s.description, len(s), reader(s), s.name, silence_db) for s in sources]


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
    sources: list[AudioSource],
    data,
    seed: int,
    per_device: int,
    accelerator,
    start_position: int,
    sample_rate: int = SAMPLE_RATE,
) -> torch.utils.data.DataLoader:
    """This process's DataLoader of training crops from global sample `start_position` on.

    `data` is a trainer's data settings (sources' weights, segment_samples, silence_db,
    max_attempts, num_workers); every process draws its own shard of the global positions.
    Crops are read at `sample_rate` (a codec's own rate; 16 kHz for the tokenizer).
    """
    from .sampling import ShardedPositionSampler

    dataset = AudioCropDataset(
        sources,
        [s.weight for s in data.sources],
        data.segment_samples,
        seed,
        data.silence_db,
        data.max_attempts,
        sample_rate,
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
