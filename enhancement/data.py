"""Training examples for the denoiser, each a pure function of (seed, index).

Three kinds of data:
- `MixedPairs`: clean speech + noise (+ impulse responses) from any sources of
  `sonotok.core.sources` (folders, globs, manifests, Hugging Face datasets), mixed on the
  fly (see mixing.py);
- `PairedFolders`: a paired corpus in the VoiceBank-DEMAND layout (a clean folder and a
  noisy folder holding files with the same relative names);
- `LatentPairs`: cached latent datasets (the shared `latents` / `num_frames` format, e.g.
  from `sonotok extract`) of the clean and the noisy files, matched by a key column.

Every example is drawn from an endless index space — index i of epoch e is row
perm(seed, e)[i % n] — so a run resumes exactly from its step count alone.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sonotok.core.audio import read_clip
from sonotok.core.errors import ConfigError, DataError, SonotokError
from sonotok.core.sources import AUDIO_EXTENSIONS, find_audio_files, open_source, source_specs
from sonotok.extraction.extract import as_float, latent_storage
from sonotok.tokenizer.train import position_rng
from sonotok.tokenizer.train.data import SourceCheck, check_items

from .mixing import MixConfig, fit_length, mix

logger = logging.getLogger(__name__)


def epoch_row(n: int, seed: int, index: int) -> int:
    """Row of endless-stream position `index`: a fresh permutation of n rows per epoch."""
    epoch, i = divmod(index, n)
    return int(np.random.default_rng([seed, 7, epoch]).permutation(n)[i])


class AudioSource:
    """The clips of one data key (`data.clean`, `data.noise`, `data.rir`), read as one list.

    spec: one source of `sonotok.core.sources` — a folder, glob, audio file, manifest or
    dataset, as a path or a mapping `{path, type, split, audio_column, ...}` (the older
    `{dataset: NAME_OR_PATH, split, column}` too) — or a list of them. `what` names the key
    in messages.
    """

    def __init__(self, spec, what: str):
        self.what = what
        try:
            self.sources = [open_source(s) for s in source_specs(spec, what)]
        except ConfigError as err:
            raise DataError(f"{what}: {err}") from None
        self.starts = np.cumsum([0] + [len(s) for s in self.sources]).tolist()

    def __len__(self) -> int:
        return self.starts[-1]

    def _locate(self, index: int):
        k = bisect.bisect_right(self.starts, index) - 1
        return self.sources[k], index - self.starts[k]

    def name(self, index: int) -> str:
        """How messages name clip `index` (its file, or dataset and row)."""
        source, i = self._locate(index)
        return source.name(i)

    def read(self, index: int, sample_rate: int) -> np.ndarray:
        """Clip `index` as mono float32 at `sample_rate` (AudioInputError naming it if unreadable)."""
        source, i = self._locate(index)
        return source.read(i, sample_rate)


def check_audio(source: AudioSource, silence_db: float = -60.0) -> SourceCheck:
    """A bounded look at a source's clips (`check_items`): how many are readable and loud."""
    return check_items(
        source.what, len(source), lambda i, _: source.read(i, 16000), source.name, silence_db, 1
    )


def check_data(data) -> list[SourceCheck]:
    """What `sonotok train enhancement --check` and the trainer's start run on a DataConfig:
    every audio source must hold readable, non-silent clips (DataError naming it if not)."""
    specs = []
    if data.latents is None and data.paired:
        specs = [(data.paired.get(side), f"data.paired.{side}") for side in ("noisy", "clean")]
    elif data.latents is None and data.clean is not None:
        specs = [(data.clean, "data.clean"), (data.noise, "data.noise")]
    checks = [check_audio(AudioSource(spec, what)) for spec, what in specs if spec is not None]
    for check in checks:
        check.require_usable(silence_key=None)
    return checks


def crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random `length`-sample window (the whole clip if shorter)."""
    if wave.shape[0] <= length:
        return wave
    start = int(rng.integers(0, wave.shape[0] - length + 1))
    return wave[start : start + length]


@dataclass
class Example:
    noisy: torch.Tensor  # (N,) at 16 kHz, or (T, D) latents for LatentPairs
    clean: torch.Tensor


class MixedPairs(torch.utils.data.Dataset):
    """Endless clean + noise mixtures; item i is a pure function of (seed, i).

    A clean, noise or RIR file that cannot be read is skipped with a warning naming it, and the
    mixture is drawn again (attempt k of position i is also a pure function of (seed, i, k)), so
    one bad file costs only itself; `max_attempts` unusable draws in a row is a DataError.
    """

    max_attempts = 50

    def __init__(
        self,
        clean: AudioSource,
        noise: AudioSource,
        mix_config: MixConfig,
        segment_samples: int,
        seed: int,
        rirs: AudioSource | None = None,
        sample_rate: int = 16000,
    ):
        self.clean, self.noise, self.rirs = clean, noise, rirs
        self.mix, self.segment, self.seed, self.sample_rate = (
            mix_config,
            segment_samples,
            seed,
            sample_rate,
        )

    def __getitem__(self, index: int) -> Example:
        last = None
        for attempt in range(self.max_attempts):
            try:
                return self._example(index, attempt)
            except (SonotokError, OSError, ValueError) as err:  # user data: skip, say which
                last = err
                logger.warning("training audio skipped: %s", err)
        raise DataError(
            f"training data: {self.max_attempts} mixtures in a row for position {index} could "
            f"not be read (last: {last}); check the clean/noise sources with --check"
        )

    def _example(self, index: int, attempt: int) -> Example:
        rng = position_rng(self.seed, index, attempt)
        n = len(self.clean)
        row = epoch_row(n, self.seed, index) if attempt == 0 else int(rng.integers(n))
        clean = crop(self.clean.read(row, self.sample_rate), self.segment, rng)
        noise = self.noise.read(int(rng.integers(len(self.noise))), self.sample_rate)
        noise = fit_length(noise, clean.shape[0], int(rng.integers(max(1, noise.shape[0]))))
        snr_db = rng.uniform(*self.mix.snr_db)
        gain_db = rng.uniform(*self.mix.gain_db)
        rir = None
        if self.rirs is not None and rng.random() < self.mix.reverb_prob:
            rir = self.rirs.read(int(rng.integers(len(self.rirs))), self.sample_rate)
        noisy, target = mix(clean, noise, snr_db, gain_db, rir, self.mix.peak)
        return Example(torch.from_numpy(noisy), torch.from_numpy(target))


class PairedFolders(torch.utils.data.Dataset):
    """VoiceBank-DEMAND style pairs: `noisy/<name>` ↔ `clean/<name>`, the same crop of both."""

    def __init__(
        self,
        noisy_dir: str,
        clean_dir: str,
        segment_samples: int | None,
        seed: int,
        sample_rate: int = 16000,
    ):
        noisy_dir, clean_dir = Path(noisy_dir).expanduser(), Path(clean_dir).expanduser()
        for d in (noisy_dir, clean_dir):
            if not d.is_dir():
                raise DataError(f"paired data: {d} is not a folder")
        names = [p.relative_to(noisy_dir) for p in find_audio_files(noisy_dir)]
        missing = [str(n) for n in names if not (clean_dir / n).is_file()]
        if missing:
            raise DataError(
                f"paired data: {len(missing)} noisy files have no clean file of the same name in {clean_dir} "
                f"(e.g. {missing[:3]}); both folders must hold the same file names"
            )
        if not names:
            raise DataError(
                f"paired data: {noisy_dir} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
            )
        self.pairs = [(noisy_dir / n, clean_dir / n) for n in names]
        self.segment, self.seed, self.sample_rate = segment_samples, seed, sample_rate

    def __getitem__(self, index: int) -> Example:
        noisy_path, clean_path = self.pairs[epoch_row(len(self.pairs), self.seed, index)]
        waves = [read_clip(p, self.sample_rate).wave.numpy() for p in (noisy_path, clean_path)]
        n = min(w.shape[0] for w in waves)
        noisy, clean = waves[0][:n], waves[1][:n]
        if self.segment is not None and n > self.segment:
            start = int(position_rng(self.seed, index).integers(0, n - self.segment + 1))
            noisy, clean = noisy[start : start + self.segment], clean[start : start + self.segment]
        return Example(torch.from_numpy(noisy), torch.from_numpy(clean))


class LatentPairs(torch.utils.data.Dataset):
    """Cached latents of clean and noisy versions of the same files, matched by `key`
    (by row order when key is None); random crops of `segment_frames`."""

    def __init__(
        self,
        noisy_path: str,
        clean_path: str,
        key: str | None,
        segment_frames: int | None,
        seed: int,
    ):
        import datasets

        sets = []
        for path in (noisy_path, clean_path):
            try:
                ds = (
                    datasets.load_from_disk(path)
                    if Path(path).is_dir()
                    else datasets.load_dataset(path, split="train")
                )
            except Exception as err:
                raise DataError(
                    f"latent data {path!r} cannot be opened ({type(err).__name__}: {err})"
                ) from None
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"]
            if "latents" not in ds.column_names:
                raise DataError(f"{path}: no 'latents' column; write it with `sonotok extract`")
            sets.append(ds)
        noisy, clean = sets
        if key is None:
            if len(noisy) != len(clean):
                raise DataError(
                    f"latent data: {len(noisy)} noisy rows vs {len(clean)} clean rows; set data.latents.key"
                )
            self.rows = [(i, i) for i in range(len(noisy))]
        else:
            for path, ds in ((noisy_path, noisy), (clean_path, clean)):
                if key not in ds.column_names:
                    raise DataError(f"{path}: no key column {key!r}; it has {ds.column_names}")
            where = {k: i for i, k in enumerate(clean[key])}
            self.rows = [(i, where[k]) for i, k in enumerate(noisy[key]) if k in where]
            if not self.rows:
                raise DataError(
                    f"latent data: no {key!r} values in common between {noisy_path} and {clean_path}"
                )
        self.storage = [latent_storage(ds) for ds in (noisy, clean)]  # bf16 is kept as uint16 bits
        self.noisy, self.clean = noisy.with_format("numpy"), clean.with_format("numpy")
        self.segment, self.seed = segment_frames, seed

    def __getitem__(self, index: int) -> Example:
        i, j = self.rows[epoch_row(len(self.rows), self.seed, index)]
        a, b = self.noisy[i], self.clean[j]
        za = as_float(a["latents"][: int(a.get("num_frames", len(a["latents"])))], self.storage[0])
        zb = as_float(b["latents"][: int(b.get("num_frames", len(b["latents"])))], self.storage[1])
        n = min(za.shape[0], zb.shape[0])
        start = 0
        if self.segment is not None and n > self.segment:
            start = int(position_rng(self.seed, index).integers(0, n - self.segment + 1))
            n = self.segment
        return Example(za[start : start + n], zb[start : start + n])


def collate(examples: list[Example]) -> list[Example]:
    return examples


def pad_latents(latents: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """list of (T_i, D) → (B, T, D) zero-padded and a (B, T) bool mask of real frames."""
    t = max(z.shape[0] for z in latents)
    out = torch.stack([torch.nn.functional.pad(z, (0, 0, 0, t - z.shape[0])) for z in latents])
    lengths = torch.tensor([z.shape[0] for z in latents], device=out.device)
    return out, torch.arange(t, device=out.device)[None] < lengths[:, None]
