"""Encode a whole audio dataset once into a latent dataset, in shards that survive interruption.

Layout of an output folder OUT:
    extract.json                  the plan (source, model, features, shard size, rows) + totals
    data-00000-of-00042.arrow     one Arrow stream per shard (rows in source order)
    .progress/data-00000-of-00042.json   marker: a shard is done only when its marker exists
    state.json, dataset_info.json written when every shard is done → `datasets.load_from_disk(OUT)`
    errors.jsonl                  one line per unreadable row (index, id, message)
    .progress/source.jsonl        the source's row names (paths or ids) in order, one JSON a line

Shard k holds source rows [k·S, (k+1)·S). Process r of P (under `accelerate launch`) takes
shards k ≡ r (mod P), so processes never share a shard and the union is every row once.
A shard is written to a temporary sibling and renamed into place, then its marker is
written the same way, so an interruption leaves either a finished shard or nothing that
`--resume` would keep. Within a shard, clips are batched by length (bucketing) so little
compute goes to padding; rows are written back in source order.

`--resume` continues only the same job: the plan records the model (name, a sha256 of the
weight bytes loaded, parameter dtypes, latent width) and the source listing (row count and a
sha256 of the row names, or the dataset fingerprint when rows have no names); a resume that
would load other weights or read a changed listing is refused before anything is touched,
since rows are matched to shards by position and latents of two models must never mix.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sonotok.core.audio import AudioInputError, atomic_path
from sonotok.core.codes import code_dtype
from sonotok.core.errors import DataError, ModelOutputError
from sonotok.core.io import check_finite, publish, write_json
from sonotok.core.sources import AudioSource, decode_audio
from sonotok.tokenizer.config import ConfigError

POOLS = ("none", "mean")
LATENT_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": None}
PLAN_FILE = "extract.json"
ERRORS_FILE = "errors.jsonl"
PROGRESS_DIR = ".progress"
LISTING_FILE = "source.jsonl"  # in PROGRESS_DIR; `.jsonl`, so never taken for a shard marker
# Fields of the plan that must match for `--resume` to continue an earlier run (the model
# and the source listing are checked on their own, with messages naming what changed).
PLAN_KEYS = (
    "source",
    "split",
    "subset",
    "audio_column",
    "features",
    "pool",
    "latent_dtype",
    "shard_size",
    "columns",
)
# What makes latents of one run comparable with another's: the same weights, held in the
# same dtypes, giving the same width and frame rate.
MODEL_KEYS = ("model_weights", "model_dtypes", "latent_dim", "frame_rate", "sample_rate")
# The files `checkpoints.read_weights` loads, in its order of preference.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class ModelChangedError(ConfigError):
    """`--resume` would load another model than the one the extraction started with."""


class SourceChangedError(DataError):
    """`--resume` would read a source whose rows were added, removed or reordered."""


@dataclass
class ExtractConfig:
    """What to extract and how. `batch_size` clips per forward pass, capped so a
    batch holds at most `max_batch_seconds` of (padded) audio; `shard_size` rows per
    output file; `num_workers` threads decoding audio ahead of the model."""

    output: str
    features: str | None = None  # None: the model's default (its first feature_names entry)
    pool: str = "none"
    latent_dtype: str = "float32"
    shard_size: int = 256
    batch_size: int = 16
    max_batch_seconds: float = 320.0
    bucketing: bool = True
    num_workers: int = 4
    resume: bool = False
    overwrite: bool = False
    model_name: str = ""
    model_folder: str = ""  # folder the weights were read from: hashed to identify them
    source_info: dict = field(default_factory=dict)
    codes: bool = False  # a discrete model's integer codes in a `codes` column
    latents: bool = True  # the continuous `features` in a `latents` (or `embedding`) column

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ConfigError(f"pool={self.pool!r}; choose one of {POOLS}")
        if not (self.codes or self.latents):
            raise ConfigError("nothing to extract: ask for codes, latents or both")
        if self.codes and self.pool == "mean":
            raise ConfigError(
                "--pool mean averages continuous latents; integer codes cannot be averaged: "
                "extract codes with --pool none"
            )
        if self.latent_dtype not in LATENT_DTYPES:
            raise ConfigError(
                f"latent dtype {self.latent_dtype!r}; choose one of {tuple(LATENT_DTYPES)}"
            )
        if self.shard_size < 1 or self.batch_size < 1:
            raise ConfigError("--shard-size and --batch-size must be at least 1")


# ---- planning -----------------------------------------------------------------------------
def planned(plan: dict, key: str):
    """A plan's value of one of PLAN_KEYS; plans written before codes could be extracted
    have no `columns`: theirs were the latents (or embedding) and num_frames."""
    if key == "columns" and key not in plan:
        return ["embedding" if plan.get("pool") == "mean" else "latents", "num_frames"]
    return plan.get(key)


def shard_ranges(num_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of consecutive shards covering `num_rows`."""
    return [(a, min(a + shard_size, num_rows)) for a in range(0, num_rows, shard_size)]


def shards_of_process(num_shards: int, rank: int, world: int) -> list[int]:
    """The shards process `rank` of `world` owns: k ≡ rank (mod world). Disjoint, complete."""
    return list(range(rank, num_shards, world))


def shard_name(k: int, num_shards: int) -> str:
    return f"data-{k:05d}-of-{num_shards:05d}.arrow"


def make_batches(
    lengths: list[int], batch_size: int, max_samples: int, bucketing: bool
) -> list[list[int]]:
    """Group item positions into batches of at most `batch_size` items whose padded size
    (items × longest) stays within `max_samples` (a single long item always fits alone).
    With `bucketing`, items are taken longest first so batch mates have similar lengths."""
    order = (
        sorted(range(len(lengths)), key=lambda i: -lengths[i]) if bucketing else range(len(lengths))
    )
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and (len(current) >= batch_size or grown * (len(current) + 1) > max_samples):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


def dropped_columns(source: AudioSource) -> list[str]:
    """Audio columns are replaced by the latents; a column of file paths is kept."""
    from datasets import Audio

    return (
        [source.audio_column]
        if isinstance(source.dataset.features[source.audio_column], Audio)
        else []
    )


def new_columns(config: ExtractConfig, decode_options: bool = False) -> list[str]:
    """The columns extraction adds, in order: `codes` (and `decode_options` where the family
    records per-clip decode options), `latents` or `embedding` (--pool mean), `num_frames`."""
    names = ["codes"] if config.codes else []
    names += ["decode_options"] if config.codes and decode_options else []
    if config.latents:
        names.append("embedding" if config.pool == "mean" else "latents")
    return [*names, "num_frames"]


def output_features(
    source: AudioSource,
    latent_dim: int,
    config: ExtractConfig,
    codebooks: tuple[int, int] | None = None,
    decode_options: bool = False,
):
    """Features of the latent dataset: the source's columns (less an Audio column), then
    `codes` (None, K) in the smallest integer type for the codebook size (`codebooks` = (K,
    codebook size); with `decode_options`, a JSON string column of each clip's options),
    `latents` (None, D) — or `embedding` (D,) with --pool mean — and `num_frames`."""
    from datasets import Array2D, Features, List, Value

    carried = {k: v for k, v in source.dataset.features.items() if k not in dropped_columns(source)}
    added = new_columns(config, decode_options)
    clash = [c for c in added if c in carried]
    if clash:
        raise ConfigError(
            f"the source already has column(s) {clash}; remove or rename them before extracting"
        )
    if config.codes:
        count, size = codebooks
        stored = str(code_dtype(size)).removeprefix("torch.")
        carried["codes"] = Array2D(shape=(None, count), dtype=stored)
        if decode_options:
            carried["decode_options"] = Value("string")
    dtype = "uint16" if config.latent_dtype == "bfloat16" else config.latent_dtype
    if config.latents and config.pool == "mean":
        carried["embedding"] = List(Value(dtype), length=latent_dim)
    elif config.latents:
        carried["latents"] = Array2D(shape=(None, latent_dim), dtype=dtype)
    carried["num_frames"] = Value("int32")
    return Features(carried)


def latent_column(values: list[np.ndarray], arrow_type, max_elements: int = 2**30):
    """Stored latents (T_i, D) or embeddings (D,) → an Arrow column of `arrow_type` (the
    Array2D extension type or a fixed-size list), built from the numpy buffers directly.
    Split into chunks of at most `max_elements` numbers: Arrow list offsets are 32-bit."""
    import pyarrow as pa

    chunks, current, size = [], [], 0
    for v in values:
        if current and size + v.size > max_elements:
            chunks.append(current)
            current, size = [], 0
        current.append(v)
        size += v.size
    chunks.append(current)
    pieces = []
    for part in chunks:
        if isinstance(arrow_type, pa.FixedSizeListType):
            flat = pa.array(
                np.concatenate([v.reshape(-1) for v in part]) if part else [], arrow_type.value_type
            )
            pieces.append(pa.FixedSizeListArray.from_arrays(flat, arrow_type.list_size))
            continue
        storage = arrow_type.storage_type
        dim = part[0].shape[1] if part else 0
        flat = pa.array(
            np.concatenate([v.reshape(-1) for v in part]) if part else [],
            storage.value_type.value_type,
        )
        frames = sum(v.shape[0] for v in part)
        inner = pa.ListArray.from_arrays(
            pa.array(np.arange(frames + 1, dtype=np.int32) * dim), flat
        )
        offsets = np.concatenate([[0], np.cumsum([v.shape[0] for v in part])]).astype(np.int32)
        outer = pa.ListArray.from_arrays(pa.array(offsets), inner)
        pieces.append(pa.ExtensionArray.from_storage(arrow_type, outer))
    return pa.chunked_array(pieces, type=arrow_type)


def to_storage(z: torch.Tensor, latent_dtype: str) -> np.ndarray:
    """Float latents → the stored numpy array; bfloat16 is kept as its raw uint16 bits
    (Arrow has no bfloat16): read back with `as_float(array, "bfloat16")`."""
    z = z.detach().cpu()
    if latent_dtype == "bfloat16":
        return z.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    return z.float().numpy().astype(LATENT_DTYPES[latent_dtype], copy=False)


def latent_storage(dataset, column: str = "latents") -> str:
    """How a latent dataset stores `column`: "bfloat16" (raw uint16 bits), "float16" or "float32"."""
    feature = dataset.features[column]
    dtype = getattr(feature, "dtype", None) or getattr(
        getattr(feature, "feature", None), "dtype", "float32"
    )
    return "bfloat16" if dtype == "uint16" else str(dtype)


def as_float(array, latent_dtype: str = "float32") -> torch.Tensor:
    """A stored `latents`/`embedding` value → float32 tensor (undoes the bfloat16 bit storage)."""
    array = np.asarray(array)
    if latent_dtype == "bfloat16":
        return torch.from_numpy(array.astype(np.uint16).view(np.int16)).view(torch.bfloat16).float()
    return torch.from_numpy(array.astype(np.float32))


# ---- what a resume must find unchanged ----------------------------------------------------
def weights_fingerprint(model: torch.nn.Module, folder: str | Path | None = None) -> str:
    """Identity of the loaded weights: a sha256 streamed over the folder's config.json and
    weight file (the bytes that were read; ~2 GB/s, so an 800M-parameter model costs
    seconds), or, without a folder, over every state_dict tensor's name, dtype, shape and bytes."""
    folder = Path(folder) if folder else None
    found = [folder / n for n in WEIGHT_FILES if (folder / n).is_file()] if folder else []
    digest = hashlib.sha256()
    if found and (folder / "config.json").is_file():
        for path in (folder / "config.json", found[0]):
            digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
            with open(path, "rb") as f:
                while block := f.read(1 << 23):
                    digest.update(block)
        return f"files-sha256:{digest.hexdigest()}"
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{value.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(value.view(torch.uint8).numpy())
    return f"params-sha256:{digest.hexdigest()}"


def model_identity(model: torch.nn.Module, name: str, folder: str | Path | None) -> dict:
    """The plan's record of the model (see MODEL_KEYS): equal records give equal latents."""
    return {
        "model": name,
        "model_weights": weights_fingerprint(model, folder),
        "model_dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()}),
        "latent_dim": model.latent_dim,
        "frame_rate": model.frame_rate,
        "sample_rate": model.sample_rate,
    }


def source_items(source: AudioSource) -> tuple[str, list[str] | None]:
    """What names the source's rows, in order: its file paths (a folder of audio or a
    manifest), else its id column; (\"fingerprint\", None) when rows have no names."""
    data = source.dataset
    if getattr(data.features[source.audio_column], "dtype", None) in ("string", "large_string"):
        return source.audio_column, [str(v) for v in data[source.audio_column]]
    if source.id_column is not None:
        return source.id_column, [str(v) for v in data[source.id_column]]
    return "fingerprint", None


def source_listing(source: AudioSource) -> tuple[dict, list[str] | None]:
    """The plan's record of the source — row count and a sha256 of the row names in order
    (or, for a dataset without row names, its `datasets` fingerprint) — and those names."""
    by, items = source_items(source)
    if items is None:
        return {"rows": len(source.dataset), "by": by, "digest": source.dataset._fingerprint}, None
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item).encode() + b"\n")
    return {"rows": len(items), "by": by, "digest": digest.hexdigest()}, items


def listing_change(old: list[str], new: list[str], noun: str = "row") -> str:
    """What differs between two listings, e.g. `2 files added ('a.wav', 'b.wav'), 1 file
    removed ('c.wav')`, or that the same rows now come in another order."""

    def some(names: Counter, what: str) -> str:
        shown = sorted(names.elements())
        listed = ", ".join(repr(n) for n in shown[:3]) + (", …" if len(shown) > 3 else "")
        return f"{len(shown)} {noun}{'' if len(shown) == 1 else 's'} {what} ({listed})"

    added, removed = Counter(new) - Counter(old), Counter(old) - Counter(new)
    parts = [some(added, "added")] if added else []
    parts += [some(removed, "removed")] if removed else []
    return ", ".join(parts) or f"the same {noun}s now come in another order"


# ---- one shard ----------------------------------------------------------------------------
@dataclass
class DecodedShard:
    k: int
    start: int
    waves: list  # per row: tensor, or None when unreadable
    seconds: list[float]
    errors: list[dict]


def encode_batch(model, waves: list[torch.Tensor], features: str) -> list[torch.Tensor]:
    """The model call, one place (benchmarks and tests wrap it)."""
    return model.encode(waves, features=features)


def encode_codes_batch(model, waves: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[dict]]:
    """The codes call of a discrete model, one place: per clip (T, K) codes and decode options."""
    return model.encode_codes(waves, return_options=True)


class Extractor:
    """Runs the shards one process owns; `finalize` (main process, after all) writes the
    index files that make OUT a dataset."""

    def __init__(self, model, source: AudioSource, config: ExtractConfig):
        names = model.feature_names  # the Tokenizer interface: what this family can give
        if config.features is None:
            config = replace(config, features=names[0])
        if config.features not in names:
            raise ConfigError(
                f"features={config.features!r}; this tokenizer gives {', '.join(names)}"
            )
        if config.codes and not model.is_discrete:
            raise ConfigError(
                f"{config.model_name or type(model).__name__} is a continuous tokenizer: it has "
                "no codes; extract its latents"
            )
        self.model = model
        self.source = source
        self.config = config
        self.out = Path(config.output)
        self.num_rows = len(source.dataset)
        self.ranges = shard_ranges(self.num_rows, config.shard_size)
        codebooks = (model.num_codebooks, model.codebook_size) if config.codes else None
        self.decode_options = bool(config.codes and model.code_option_names)
        self.columns = new_columns(config, self.decode_options)
        self.features = output_features(
            source, model.latent_dim, config, codebooks, self.decode_options
        )
        self.rank = 0

    # -- plan / resume --------------------------------------------------------------------
    @cached_property
    def identity(self) -> dict:
        """The model's record in the plan (hashing the weights once per run)."""
        return model_identity(self.model, self.config.model_name, self.config.model_folder)

    @cached_property
    def listing(self) -> tuple[dict, list[str] | None]:
        """The source's record in the plan, and its row names (None: rows have no names)."""
        return source_listing(self.source)

    def plan(self) -> dict:
        info = {k: v for k, v in asdict(self.config).items() if k != "source_info"}
        return {
            **self.config.source_info,
            **self.identity,
            "features": self.config.features,
            "pool": self.config.pool,
            "latent_dtype": self.config.latent_dtype,
            "shard_size": self.config.shard_size,
            "num_rows": self.num_rows,
            "num_shards": len(self.ranges),
            "source_listing": self.listing[0],
            "columns": self.columns,
            **self.codebook_facts(),
            "settings": info,
        }

    def codebook_facts(self) -> dict:
        """What a reader of the codes needs (discrete models): family, codebook size and count,
        bitrate, and with a codes column its storage type and decode option names."""
        model = self.model
        if not model.is_discrete:
            return {}
        facts = {
            "model_type": getattr(model, "model_type", type(model).__name__),
            "codebook_size": model.codebook_size,
            "codebook_sizes": list(model.codebook_sizes),
            "num_codebooks": model.num_codebooks,
            "tokens_per_second": model.frame_rate * model.num_codebooks,
            "bitrate": model.bitrate,
        }
        if self.config.codes:
            facts["code_dtype"] = str(code_dtype(model.codebook_size)).removeprefix("torch.")
            facts["code_option_names"] = list(model.code_option_names)
        return facts

    def prepare(self) -> None:
        """Check or write the plan (main process only; others wait). A refused resume
        raises before anything in OUT is touched."""
        plan = self.plan()
        path = self.out / PLAN_FILE
        if path.is_file() and not self.config.overwrite:
            old = json.loads(path.read_text())
            if not self.config.resume:
                raise ConfigError(
                    f"{self.out}: already holds an extraction; pass --resume to continue it or "
                    "--overwrite to start again"
                )
            changed = [k for k in PLAN_KEYS if planned(old, k) != plan.get(k)]
            if changed:
                raise ConfigError(
                    f"{self.out}: was extracted with different settings ({', '.join(changed)}: "
                    f"{[old.get(k) for k in changed]} → {[plan.get(k) for k in changed]}); "
                    "resume with the same settings or pass --overwrite"
                )
            self._check_model(old, plan)
            self._check_source(old, plan)
        elif self.out.exists() and any(self.out.iterdir()) and not self.config.overwrite:
            if not path.is_file():
                raise ConfigError(
                    f"{self.out}: exists and is not an extraction folder; choose an empty or new folder"
                )
        if self.config.overwrite and self.out.is_dir():
            self._clear()
        (self.out / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)
        for stale in self.out.glob(".data-*.tmp"):
            stale.unlink(missing_ok=True)  # an interrupted write; never a finished shard
        if not path.is_file() or self.config.overwrite:
            self._write_listing()  # before the plan: a plan never lacks its listing
            write_json(path, plan)

    def _check_model(self, old: dict, plan: dict) -> None:
        """Refuse to resume with other weights, dtypes or width than the run started with."""
        keys = MODEL_KEYS if "model_weights" in old else ("model", "latent_dim")  # older plans
        if all(old.get(k) == plan.get(k) for k in keys):
            return

        def describe(p: dict) -> str:
            weights = str(p.get("model_weights", "not recorded")).split(":")[-1][:12]
            dtypes = "/".join(p.get("model_dtypes") or ["?"])
            return f"{p.get('model')!r} ({p.get('latent_dim')}-d, {dtypes}, weights {weights})"

        named = old.get("model") not in (None, "", "None", plan.get("model"))
        again = "without --resume into a new folder, or pass --overwrite to start again"
        advice = (
            f"Resume with --model {old['model']} if it holds those weights; or re-run {again}"
            if named
            else f"Re-run {again}"
        )
        raise ModelChangedError(
            f"{self.out}: was started with model {describe(old)} but this run loads "
            f"{describe(plan)} (--model/--dtype); resuming would mix latents of two models in "
            f"one dataset, so nothing was done. {advice}"
        )

    def _check_source(self, old: dict, plan: dict) -> None:
        """Refuse to resume when rows were added, removed or reordered: shards hold rows by
        position, so a shifted listing would lose some rows and repeat others."""
        before, now = old.get("source_listing"), plan["source_listing"]
        if before is None:  # older plans recorded only the row count
            if old.get("num_rows") == now["rows"]:
                return
            what = f"it had {old.get('num_rows')} rows, now {now['rows']}"
        elif before == now:
            return
        elif before.get("by") == now["by"] and self.listing[1] is not None and self._listed():
            noun = "file" if now["by"] == self.source.audio_column else "row"
            what = listing_change(self._read_listing(), self.listing[1], noun)
        else:
            what = (
                f"{before.get('rows')} rows (by {before.get('by')}, {before.get('digest')}) → "
                f"{now['rows']} rows (by {now['by']}, {now['digest']})"
            )
        raise SourceChangedError(
            f"{self.out}: the source {old.get('source')} changed since this extraction started: "
            f"{what}. Resuming would lose or duplicate rows, so nothing was done; restore the "
            "source and resume, re-run without --resume into a new folder, or pass --overwrite "
            "to start again"
        )

    def _listing_path(self) -> Path:
        return self.out / PROGRESS_DIR / LISTING_FILE

    def _listed(self) -> bool:
        return self._listing_path().is_file()

    def _read_listing(self) -> list[str]:
        return [json.loads(line) for line in self._listing_path().read_text().splitlines()]

    def _write_listing(self) -> None:
        """The source's row names, one JSON string a line, so a refused resume can say which
        files or rows changed (none when the rows have no names)."""
        items = self.listing[1]
        path = self._listing_path()
        if items is None:
            path.unlink(missing_ok=True)
            return
        tmp = atomic_path(path)
        try:
            tmp.write_text("".join(json.dumps(item) + "\n" for item in items))
            publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _clear(self) -> None:
        for p in [*self.out.glob("data-*.arrow"), *self.out.glob(".data-*.tmp")]:
            p.unlink()
        for name in (PLAN_FILE, ERRORS_FILE, "state.json", "dataset_info.json"):
            (self.out / name).unlink(missing_ok=True)
        for p in (self.out / PROGRESS_DIR).glob("*.json"):
            p.unlink()
        self._listing_path().unlink(missing_ok=True)

    def marker(self, k: int) -> Path:
        return self.out / PROGRESS_DIR / shard_name(k, len(self.ranges)).replace(".arrow", ".json")

    def is_done(self, k: int) -> bool:
        return self.marker(k).is_file() and (self.out / shard_name(k, len(self.ranges))).is_file()

    # -- work -----------------------------------------------------------------------------
    def _decode_row(
        self, index: int, cell, row_id
    ) -> tuple[torch.Tensor | None, float, dict | None]:
        column = self.source.id_column
        name = f"row {index} ({column}={row_id})" if column is not None else f"row {index}"
        try:
            wave, seconds = decode_audio(cell, self.model.sample_rate, self.source.base_dir, name)
            return wave, seconds, None
        except (AudioInputError, OSError, ValueError, TypeError) as err:
            entry = {"index": index, "error": str(err)}
            if column is not None:
                entry["id"] = row_id
            return None, 0.0, entry

    def _decode_shard(self, k: int, pool: ThreadPoolExecutor) -> DecodedShard:
        start, stop = self.ranges[k]
        rows = self.source.dataset[start:stop]
        cells = rows[self.source.audio_column]
        ids = rows[self.source.id_column] if self.source.id_column else [None] * len(cells)
        results = list(pool.map(self._decode_row, range(start, stop), cells, ids))
        return DecodedShard(
            k,
            start,
            [r[0] for r in results],
            [r[1] for r in results],
            [r[2] for r in results if r[2] is not None],
        )

    def _encode_rows(self, waves: list[torch.Tensor], names: list[str]) -> list[dict]:
        """Waves → per row {column: stored value, "num_frames": T}; a row whose model output
        must not be stored (NaN/inf latents, codes outside the codebook) gets the
        ModelOutputError naming it (`names`) in its place."""
        rows: list[dict] = [{} for _ in waves]
        if self.config.codes:
            codes, options = encode_codes_batch(self.model, waves)
            size = self.model.codebook_size
            sizes = torch.tensor(self.model.codebook_sizes)  # each codebook's own range
            for row, c, o in zip(rows, codes, options):
                row["num_frames"] = c.shape[0]
                row["codes"] = c.to(code_dtype(size)).cpu().numpy()
                row["decode_options"] = json.dumps(o, sort_keys=True)
                if c.numel() and not ((c >= 0).all() and (c.cpu() < sizes).all()):
                    row["error"] = f"codes outside [0, {sizes.tolist()}) (a model bug)"
        if self.config.latents:
            if self.config.codes and self.config.features == self.model.feature_names[0]:
                with torch.no_grad():  # `encode` is the codes' embeddings: no second encoding
                    device = self.model.device
                    latents = [self.model.embed_codes(c[None].to(device))[0] for c in codes]
            else:
                latents = encode_batch(self.model, waves, self.config.features)
            for row, z in zip(rows, latents):
                row["num_frames"], row["latents"] = z.shape[0], z
        out = []
        for row, name in zip(rows, names):
            if "error" in row:
                out.append(ModelOutputError(f"{name}: {row['error']}"))
                continue
            if "latents" in row:
                try:
                    check_finite(row["latents"], "latents", name)
                except ModelOutputError as err:  # NaN/inf output: an error row, never stored
                    out.append(err)
                    continue
                z = row["latents"].mean(0) if self.config.pool == "mean" else row["latents"]
                row["latents"] = to_storage(z, self.config.latent_dtype)
            out.append(row)
        return out

    def _encode_shard(self, shard: DecodedShard, bar: tqdm, clock: dict) -> dict[int, dict]:
        """Row position in shard → {new column: stored value, "num_frames": frame count}."""
        present = [i for i, w in enumerate(shard.waves) if w is not None]
        lengths = [shard.waves[i].shape[-1] for i in present]
        max_samples = int(self.config.max_batch_seconds * self.model.sample_rate)
        out: dict[int, dict] = {}
        for batch in make_batches(
            lengths, self.config.batch_size, max_samples, self.config.bucketing
        ):
            rows = [present[j] for j in batch]
            names = [f"row {shard.start + i}" for i in rows]
            encoded = self._encode_rows([shard.waves[i] for i in rows], names)
            for i, row in zip(rows, encoded):
                if isinstance(row, ModelOutputError):  # an error row, never stored
                    shard.errors.append({"index": shard.start + i, "error": str(row)})
                    tqdm.write(f"error: {row}", file=sys.stderr)
                    continue
                out[i] = row
            clock["audio"] += sum(shard.seconds[i] for i in rows)
            bar.update(len(rows))
            elapsed = time.perf_counter() - clock["start"]
            bar.set_postfix_str(f"{clock['audio'] / max(elapsed, 1e-9):.1f} h audio/h")
        return out

    def _write_shard(self, shard: DecodedShard, encoded: dict) -> dict:
        """Arrow stream of the shard's rows (source order) → temp file → rename → marker.
        Runs on the writer thread, overlapping the next shard's encoding."""
        import pyarrow as pa

        start, stop = self.ranges[shard.k]
        keep = sorted(encoded)
        index = pa.array(keep, pa.int64())
        schema = self.features.arrow_schema
        names = [c for c in self.source.dataset.column_names if c in self.features]
        columns = []
        if names:
            rows = self.source.dataset.select_columns(names).with_format("arrow")[start:stop]
            columns = [rows.column(n).take(index) for n in names]
        for name in self.columns:
            key = "latents" if name == "embedding" else name
            values = [encoded[i][key] for i in keep]
            if name == "decode_options":
                columns.append(pa.array(values, pa.string()))
            elif name == "num_frames":
                columns.append(pa.array([int(v) for v in values], pa.int32()))
            else:
                columns.append(latent_column(values, schema.field(name).type))
        columns = [
            c.cast(schema.field(i).type) if c.type != schema.field(i).type else c
            for i, c in enumerate(columns)
        ]
        table = pa.Table.from_arrays(columns, schema=schema)
        path = self.out / shard_name(shard.k, len(self.ranges))
        tmp = atomic_path(path)  # .data-…arrow.XXXX.tmp: never matched as a shard
        try:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
                writer.write_table(table, max_chunksize=64)
            publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        summary = {
            "shard": shard.k,
            "process": self.rank,
            "rows": len(keep),
            "seconds_of_audio": sum(shard.seconds),
            "latent_frames": int(sum(encoded[i]["num_frames"] for i in keep)),
            "errors": shard.errors,
        }
        write_json(self.marker(shard.k), summary)
        return summary

    def run(self, rank: int = 0, world: int = 1) -> dict:
        """Extract this process's unfinished shards; returns counts for this process."""
        self.rank = rank
        mine = [k for k in shards_of_process(len(self.ranges), rank, world) if not self.is_done(k)]
        total_rows = sum(self.ranges[k][1] - self.ranges[k][0] for k in mine)
        clock = {"start": time.perf_counter(), "audio": 0.0}
        done = {"shards": 0, "rows": 0, "errors": 0, "seconds_of_audio": 0.0}
        decoder = ThreadPoolExecutor(max(1, self.config.num_workers))
        prefetch = ThreadPoolExecutor(1)
        writer = ThreadPoolExecutor(1)  # one shard written while the next is encoded
        written = None

        def account(summary: dict) -> None:
            done["shards"] += 1
            done["rows"] += summary["rows"]
            done["errors"] += len(summary["errors"])
            done["seconds_of_audio"] += summary["seconds_of_audio"]

        bar = tqdm(
            total=total_rows,
            unit="clip",
            desc=f"extract [{rank}/{world}]" if world > 1 else "extract",
            position=rank if world > 1 else None,
            disable=None,
            file=sys.stderr,
        )
        try:
            pending = prefetch.submit(self._decode_shard, mine[0], decoder) if mine else None
            for n in range(len(mine)):
                shard = pending.result()
                pending = (
                    prefetch.submit(self._decode_shard, mine[n + 1], decoder)
                    if n + 1 < len(mine)
                    else None
                )
                for entry in shard.errors:
                    tqdm.write(f"error: {entry['error']}", file=sys.stderr)
                encoded = self._encode_shard(shard, bar, clock)
                bar.update(len(shard.errors))
                if written is not None:
                    account(written.result())  # at most one shard waits to be written
                written = writer.submit(self._write_shard, shard, encoded)
            if written is not None:
                account(written.result())
        finally:
            bar.close()
            prefetch.shutdown(wait=False, cancel_futures=True)
            decoder.shutdown(wait=False, cancel_futures=True)
            writer.shutdown(wait=True)  # a shard being written is finished, never left half
        elapsed = time.perf_counter() - clock["start"]
        done["wall_seconds"] = elapsed
        done["hours_of_audio_per_hour"] = done["seconds_of_audio"] / max(elapsed, 1e-9)
        return done

    # -- index ----------------------------------------------------------------------------
    def finalize(self) -> dict:
        """Once every shard is done: errors.jsonl, dataset_info.json, state.json (so
        `datasets.load_from_disk(OUT)` opens all shards without copying them) and totals."""
        from datasets import DatasetInfo

        missing = [k for k in range(len(self.ranges)) if not self.is_done(k)]
        if missing:
            raise RuntimeError(
                f"{self.out}: {len(missing)} shard(s) not finished (first: {missing[0]}); "
                "run the same command again with --resume"
            )
        summaries = [json.loads(self.marker(k).read_text()) for k in range(len(self.ranges))]
        errors = [e for s in summaries for e in s["errors"]]
        tmp = atomic_path(self.out / ERRORS_FILE)
        try:
            tmp.write_text("".join(json.dumps(e, default=str) + "\n" for e in errors))
            publish(tmp, self.out / ERRORS_FILE)
        finally:
            tmp.unlink(missing_ok=True)
        plan = self.plan()
        info = DatasetInfo(
            description=f"sonotok latents ({self.config.features}, pool={self.config.pool}, "
            f"{self.config.latent_dtype}) of {plan.get('source', '?')} by {self.config.model_name}",
            features=self.features,
        )
        tmp = atomic_path(self.out / "dataset_info.json")
        try:
            with open(tmp, "wb") as f:
                info._dump_info(f, pretty_print=True)
            publish(tmp, self.out / "dataset_info.json")
        finally:
            tmp.unlink(missing_ok=True)
        fingerprint = hashlib.sha256(
            json.dumps(plan, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        write_json(
            self.out / "state.json",
            {
                "_data_files": [
                    {"filename": shard_name(k, len(self.ranges))} for k in range(len(self.ranges))
                ],
                "_fingerprint": fingerprint,
                "_format_columns": None,
                "_format_kwargs": {},
                "_format_type": None,
                "_output_all_columns": False,
                "_split": None,
            },
        )
        totals = {
            "complete": True,
            "rows": sum(s["rows"] for s in summaries),
            "errors": len(errors),
            "hours_of_audio": sum(s["seconds_of_audio"] for s in summaries) / 3600,
            "latent_frames": sum(s["latent_frames"] for s in summaries),
        }
        write_json(self.out / PLAN_FILE, {**plan, "totals": totals})
        return totals


def extract(
    model,
    source: AudioSource,
    config: ExtractConfig,
    rank: int = 0,
    world: int = 1,
    barrier: Callable[[], None] | None = None,
) -> dict:
    """The whole job for one process: prepare (main), run own shards, finalize (main).
    `barrier` synchronises processes (accelerate's `wait_for_everyone`) when world > 1."""
    barrier = barrier or (lambda: None)
    extractor = Extractor(model, source, config)
    if rank == 0:
        extractor.prepare()
    barrier()
    done = extractor.run(rank, world)
    barrier()
    if rank == 0:
        done["totals"] = extractor.finalize()
    return done
