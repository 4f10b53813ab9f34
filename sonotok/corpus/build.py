"""Build the corpus: render every clip in parallel, then write Hugging Face datasets.

Layout of `DIR` (each dataset a `DatasetDict` with train/validation/test, `save_to_disk`):

    DIR/clips/   speech, music and sound clips with captions (`domain` says which)
    DIR/noise/   background noises for enhancement training (`domain` = "noise")
    DIR/corpus.json, DIR/README.md   settings, counts and generation speed

Clip `i` of a domain depends only on (seed, domain, i, seconds, soundfont), never on the
worker count or the other flags, so the same flags give the same bytes and a larger corpus
extends a smaller one. Rendered clips are kept in `DIR.partial/` as they finish, so an
interrupted build resumes where it stopped; `DIR` itself appears only when complete
(built beside it, then renamed).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sonotok.core.audio import SAMPLE_RATE

from .clip import METADATA_COLUMNS, Clip, CorpusError, encode_wav, item_rng, set_loudness
from .music import make_music
from .noise import make_noise
from .sounds import make_sound
from .speech import make_speech
from .tools import require, soundfont

FORMAT_VERSION = 1  # bump when a generator changes its output, so stale partial work is dropped
DATASETS = {"clips": ("speech", "music", "sound"), "noise": ("noise",)}
SPLITS = ("train", "validation", "test")


@dataclass
class CorpusSpec:
    """What to build: clips per domain, clip length, seed and split fractions."""

    speech: int = 600
    music: int = 300
    sounds: int = 300
    noise: int = 200
    seconds: float = 4.0
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    soundfont: str | None = None

    def __post_init__(self):
        for name in ("speech", "music", "sounds", "noise"):
            if getattr(self, name) < 0:
                raise CorpusError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.speech + self.music + self.sounds + self.noise == 0:
            raise CorpusError("nothing to make: all of --speech, --music, --sounds, --noise are 0")
        if not 1.0 <= self.seconds <= 30.0:
            raise CorpusError(f"--seconds must be between 1 and 30, got {self.seconds}")
        if (
            min(self.val_fraction, self.test_fraction) < 0
            or self.val_fraction + self.test_fraction >= 1
        ):
            raise CorpusError(
                "--val-fraction and --test-fraction must be >= 0 and sum to less than 1"
            )

    def counts(self) -> dict[str, int]:
        return {
            "speech": self.speech,
            "music": self.music,
            "sound": self.sounds,
            "noise": self.noise,
        }

    def identity(self) -> dict:
        """The settings a rendered clip depends on (resuming requires them to match)."""
        return dict(
            version=FORMAT_VERSION, seed=self.seed, seconds=self.seconds, soundfont=self.soundfont
        )


def check_tools(spec: CorpusSpec) -> None:
    """Fail before any work if a program a requested domain needs is missing."""
    counts = spec.counts()
    if counts["speech"] or counts["noise"]:
        require("espeak-ng")  # speech, and babble noise
    if counts["speech"]:
        require("flite")
    if counts["sound"] or counts["noise"]:
        require("sox")
    if counts["music"]:
        require("fluidsynth")
        soundfont(spec.soundfont)
        try:
            import mido  # noqa: F401
        except ImportError:
            raise CorpusError("music needs mido: pip install 'sonotok[corpus]'") from None


def make_clip(spec: CorpusSpec, domain: str, index: int) -> Clip:
    """Clip `index` of `domain`, loudness set: a pure function of the spec's identity."""
    rng = item_rng(spec.seed, domain, index)
    if domain == "speech":
        clip = make_speech(rng, spec.seconds)
    elif domain == "music":
        clip = make_music(rng, spec.seconds, soundfont(spec.soundfont))
    elif domain == "sound":
        clip = make_sound(rng, spec.seconds)
    elif domain == "noise":
        clip = make_noise(rng, spec.seconds)
    else:
        raise ValueError(f"unknown domain {domain!r}")
    clip.wave = set_loudness(clip.wave, float(rng.uniform(-28.0, -18.0)))
    return clip


def clip_id(domain: str, index: int) -> str:
    return f"{domain}-{index:06d}"


def _render(job: tuple[CorpusSpec, str, int, str]) -> tuple[str, float]:
    """Worker: render one clip into `items` (wav + json, each written atomically)."""
    spec, domain, index, items = job
    start = time.perf_counter()
    clip = make_clip(spec, domain, index)
    name = clip_id(domain, index)
    row = {"caption": clip.caption, "domain": clip.domain, **clip.facts}
    for suffix, data in ((".wav", encode_wav(clip.wave)), (".json", json.dumps(row).encode())):
        target = Path(items) / f"{name}{suffix}"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return domain, time.perf_counter() - start


def assign_splits(count: int, spec: CorpusSpec, domain: str) -> list[str]:
    """Split of each of a domain's clips: a seeded shuffle, test and validation first; with
    3 or more clips every split gets at least one."""
    n_test = round(count * spec.test_fraction)
    n_val = round(count * spec.val_fraction)
    if count >= 3:
        n_test, n_val = max(1, n_test), max(1, n_val)
    order = item_rng(spec.seed, f"split-{domain}", 0).permutation(count)
    labels = ["train"] * count
    for rank, i in enumerate(order):
        if rank < n_test:
            labels[i] = "test"
        elif rank < n_test + n_val:
            labels[i] = "validation"
    return labels


def features(raw_audio: bool = False):
    """Column types. `raw_audio`: the audio column as a plain {bytes, path} struct, which is
    how rows are written (datasets' Audio encoder would import torchcodec) before the
    column is cast to `Audio(decode=False)`, an Arrow-level relabelling."""
    import datasets

    audio = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    columns = {
        "id": datasets.Value("string"),
        "audio": audio if raw_audio else datasets.Audio(sampling_rate=SAMPLE_RATE, decode=False),
        "caption": datasets.Value("string"),
        "domain": datasets.Value("string"),
    }
    columns.update({k: datasets.Value(v) for k, v in METADATA_COLUMNS.items()})
    return datasets.Features(columns)


def _rows(items: str, names: list[str]):
    """Dataset rows of the rendered clips `names` (a generator, so memory stays small)."""
    for name in names:
        row = json.loads((Path(items) / f"{name}.json").read_text())
        audio = {"bytes": (Path(items) / f"{name}.wav").read_bytes(), "path": f"{name}.wav"}
        yield {
            "id": name,
            "audio": audio,
            **{k: row.get(k) for k in ("caption", "domain", *METADATA_COLUMNS)},
        }


def _write_dataset(
    folder: Path, split_names: dict[str, list[str]], items: Path, cache: Path
) -> None:
    import datasets
    import pyarrow as pa

    splits = {}
    raw = features(raw_audio=True)
    for split, names in split_names.items():
        if names:
            ds = datasets.Dataset.from_generator(
                _rows,
                features=raw,
                gen_kwargs={"items": str(items), "names": names},
                cache_dir=str(cache),
            )
            splits[split] = ds.cast(features())
        else:  # built from an empty Arrow table: datasets cannot encode zero rows
            schema = features().arrow_schema
            table = pa.Table.from_batches(
                [pa.RecordBatch.from_pylist([], schema=schema)], schema=schema
            )
            info = datasets.DatasetInfo(features=features())
            splits[split] = datasets.Dataset(datasets.table.InMemoryTable(table), info=info)
    # An empty split saved with the default shard count gets no data file and cannot be
    # loaded back; one (empty) shard can.
    shards = {split: 1 for split, names in split_names.items() if not names}
    datasets.DatasetDict(splits).save_to_disk(str(folder), num_shards=shards)


def _card(spec: CorpusSpec, counts: dict, speed: dict) -> str:
    lines = [
        "# sonotok synthetic corpus",
        "",
        "Made offline by `sonotok corpus make` from local synthesizers only: espeak-ng and flite",
        "speech, General MIDI music rendered by fluidsynth, and sound events and noises made with",
        "sox and numpy. 16 kHz mono 16-bit WAV, one caption per clip.",
        "",
        f"Settings: `{json.dumps(asdict(spec))}`",
        "",
        "| dataset | domain | train | validation | test |",
        "| --- | --- | --- | --- | --- |",
    ]
    for dataset, domains in counts.items():
        for domain, per_split in domains.items():
            lines.append(
                f"| {dataset} | {domain} | "
                + " | ".join(str(per_split.get(s, 0)) for s in SPLITS)
                + " |"
            )
    lines += [
        "",
        "Load: `datasets.load_from_disk('DIR/clips')`; the `audio` column holds WAV bytes",
        "(`datasets.Audio(decode=False)`): `soundfile.read(io.BytesIO(row['audio']['bytes']))`.",
        "Columns: id, audio, caption, domain (speech|music|sound|noise), voice, language, rate,",
        "sentence, instrument, tempo, key, mood, event, duration.",
        "",
        "Rendering speed (clips per second of one worker): "
        + ", ".join(f"{d} {v:.2f}" for d, v in speed.items()),
        "",
    ]
    return "\n".join(lines)


def make_corpus(
    output: str | os.PathLike,
    spec: CorpusSpec,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Render and write the corpus to `output`; returns the summary written to corpus.json."""
    import datasets

    output = Path(output)
    if output.exists() and not overwrite:
        raise CorpusError(f"{output} already exists; pass --overwrite or choose another folder")
    check_tools(spec)
    work = output.with_name(output.name + ".partial")
    items = work / "items"
    identity_file = work / "settings.json"
    if work.exists():
        try:
            same = json.loads(identity_file.read_text()) == spec.identity()
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:  # clips rendered with other settings are of no use
            shutil.rmtree(work)
    items.mkdir(parents=True, exist_ok=True)
    identity_file.write_text(json.dumps(spec.identity()))

    counts = spec.counts()
    jobs = [
        (spec, domain, i, str(items))
        for domain, count in counts.items()
        for i in range(count)
        if not (items / f"{clip_id(domain, i)}.json").is_file()
    ]
    done = sum(counts.values()) - len(jobs)
    busy = {d: 0.0 for d in counts}
    rendered = {d: 0 for d in counts}
    workers = max(1, workers or min(8, os.cpu_count() or 1))
    bar = tqdm(
        total=sum(counts.values()),
        initial=done,
        desc="rendering clips",
        unit="clip",
        disable=not progress,
    )
    with bar:
        if workers == 1:
            results = map(_render, jobs)
            for domain, seconds in results:
                busy[domain] += seconds
                rendered[domain] += 1
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for domain, seconds in pool.map(_render, jobs, chunksize=1):
                    busy[domain] += seconds
                    rendered[domain] += 1
                    bar.update()
    speed = {d: rendered[d] / busy[d] for d in counts if busy[d] > 0}

    build = work / "build"
    shutil.rmtree(build, ignore_errors=True)
    summary = {"settings": asdict(spec), "counts": {}, "clips_per_second_per_worker": speed}
    disable = not progress
    if disable:
        datasets.disable_progress_bars()
    try:
        for dataset, domains in DATASETS.items():
            if not any(counts[d] for d in domains):
                continue
            split_names = {s: [] for s in SPLITS}
            summary["counts"][dataset] = {}
            for domain in domains:
                labels = assign_splits(counts[domain], spec, domain)
                for i, split in enumerate(labels):
                    split_names[split].append(clip_id(domain, i))
                summary["counts"][dataset][domain] = {s: labels.count(s) for s in SPLITS}
            _write_dataset(build / dataset, split_names, items, work / "cache")
    finally:
        if disable:
            datasets.enable_progress_bars()
    (build / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    (build / "README.md").write_text(_card(spec, summary["counts"], speed))
    if output.exists():  # --overwrite: swap in the new corpus, then drop the old one
        old = work / "old"
        os.replace(output, old)
    os.replace(build, output)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def read_clip_wave(row: dict) -> np.ndarray:
    """A corpus row's audio as (N,) float32 (the bytes are 16 kHz mono WAV)."""
    import io

    import soundfile as sf

    wave, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
    if rate != SAMPLE_RATE:
        raise CorpusError(f"{row.get('id')}: expected {SAMPLE_RATE} Hz audio, found {rate} Hz")
    return wave
