"""Compare tokenizers the way the DashengTokenizer paper does: reconstruction, understanding
and cost for several tokenizers on one data suite, through the `Tokenizer` interface only.

Protocol (per tokenizer, every clip read at a common 16 kHz):

- reconstruction: encode → decode back to 16 kHz (what `Tokenizer.reconstruct` and
  `sonotok eval reconstruct` do), scored by the toolkit's own metrics — speech clips: PESQ
  (wide band), STOI, speaker similarity (resemblyzer), DNSMOS P.835 of the reconstruction,
  mel and STFT distance; other domains: mel and STFT distance;
- understanding: each clip's latents mean-pooled (X-ARES), then stratified k-fold linear probe
  (LayerNorm → Linear, the X-ARES schedule) and weighted kNN accuracy per labelled task
  (default: the domain, i.e. the data suite's first sub-folder);
- cost: parameters, frame rate, bitrate (discrete) or latent values per second (continuous),
  encode and decode real-time factor (seconds of compute per second of audio) of this run.

Resumable: each (tokenizer × clip) result is appended to ``OUT/cache/<tokenizer>.jsonl`` as soon
as it is computed (keyed by clip id and audio digest); a rerun skips them. A tokenizer that
fails to load or a clip that fails is one error line; the rest finish.

Many GPUs (``accelerate launch``): process ``rank`` of ``world`` takes every ``world``-th clip of
each tokenizer and appends to its own ``cache/<tokenizer>-<hash>.<rank>.jsonl``; after a
barrier the main process merges every cache file, runs the probes and writes the outputs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sonotok.core.audio import restore_rate_and_length
from sonotok.core.errors import SonotokError
from sonotok.tokenizer import AudioInputError, write_audio

from .data import EvaluationInputError, Item
from .probe import (
    ProbeConfig,
    Split,
    accuracy,
    assign_folds,
    fold_splits,
    knn_predict,
    predict,
    train_linear_probe,
)
from .quality import SpeakerSimilarity, dnsmos
from .reconstruct import match_length
from .report import pick_examples
from .spectral import mel_distance, stft_distance
from .speech import pesq_wb, stoi

__all__ = [
    "COMPARE_RATE",
    "Comparison",
    "TokenizerResult",
    "clip_metrics",
    "compare",
    "display_names",
    "probe_task",
    "task_labels",
]

COMPARE_RATE = 16000
SPEECH_METRICS = (
    "pesq", "stoi", "speaker_similarity", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
    "mel_distance", "stft_distance",
)  # fmt: skip
# model-based (resemblyzer, DNSMOS): `speech_quality=False` skips them, the table leaves them out
MODEL_METRICS = ("speaker_similarity", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")
GENERAL_METRICS = ("mel_distance", "stft_distance")
SPEECH_DOMAINS = ("speech",)
NUM_EXAMPLES = 3


@functools.cache
def _speaker_similarity() -> SpeakerSimilarity:
    return SpeakerSimilarity("cpu")  # small; one instance per process (its weights load once)


def clip_metrics(
    reference: torch.Tensor, estimate: torch.Tensor, domain: str | None, speech_quality: bool = True
) -> dict:
    """The paper's reconstruction metrics of one 16 kHz clip: speech gets PESQ and STOI too,
    and (with `speech_quality`) speaker similarity and the reconstruction's DNSMOS. The same
    functions `sonotok eval reconstruct` and the quality toolkit use, so values match them."""
    scores = {
        "mel_distance": mel_distance(estimate, reference, COMPARE_RATE),
        "stft_distance": stft_distance(estimate, reference, COMPARE_RATE),
    }
    if domain in SPEECH_DOMAINS:
        scores["pesq"] = pesq_wb(reference, estimate, COMPARE_RATE)
        scores["stoi"] = stoi(reference, estimate, COMPARE_RATE)
        if speech_quality:
            scores["speaker_similarity"] = _speaker_similarity()(reference, estimate, COMPARE_RATE)
            scores.update(dnsmos(estimate, COMPARE_RATE))
    return scores


def _needs_rerun(row: dict | None, digest: str, speech_quality: bool) -> bool:
    """A clip is computed again when not cached, changed, or cached without a metric asked for."""
    if row is None or row.get("digest") != digest:
        return True
    missing = not set(MODEL_METRICS) <= set(row["metrics"])
    return speech_quality and row.get("domain") in SPEECH_DOMAINS and missing


# ---- naming and the per-tokenizer cache ---------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def display_names(models: Sequence[str]) -> list[str]:
    """Short table names: a folder's name, a hub id as given; the full text where two clash."""

    def short_name(model: str) -> str:
        path = Path(model).expanduser()
        if not path.exists():
            return str(model)
        generic = path.name in ("tokenizer", "model")  # e.g. sonotok/mini/tokenizer → mini/…
        return f"{path.resolve().parent.name}/{path.name}" if generic else path.name

    short = [short_name(str(m)) for m in models]
    return [s if short.count(s) == 1 else str(m) for s, m in zip(short, models)]


def cache_path(out_dir: Path, model: str, rank: int | None = None) -> Path:
    """One JSONL per tokenizer, named by its table name and a hash of where it came from;
    process `rank` of a multi-process run appends to its own `<name>.<rank>.jsonl`."""
    where = str(Path(model).expanduser().resolve()) if Path(model).expanduser().exists() else model
    digest = hashlib.sha1(where.encode()).hexdigest()[:8]
    suffix = "" if rank is None else f".{rank}"
    return out_dir / "cache" / f"{_safe(Path(model).name or model)}-{digest}{suffix}.jsonl"


def cache_files(out_dir: Path, model: str) -> list[Path]:
    """Every cache file of one tokenizer: the one-process file, then each rank's."""
    base = cache_path(out_dir, model)
    found = base.parent.glob(base.stem + ".*.jsonl")
    ranks = {int(p.suffixes[-2][1:]): p for p in found if p.suffixes[-2][1:].isdigit()}
    return [base, *(ranks[r] for r in sorted(ranks))]


def read_cache(path: Path) -> dict[str, dict]:
    """Finished rows by clip id; a torn last line (an interrupted write) is ignored."""
    rows: dict[str, dict] = {}
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "id" in row:
            rows[row["id"]] = row
    return rows


def cached_rows(paths: Sequence[Path]) -> dict[str, list[dict]]:
    """Rows of several cache files (runs with other numbers of processes write other files),
    every file's row of a clip id kept, in file order."""
    rows: dict[str, list[dict]] = {}
    for path in paths:
        for key, row in read_cache(path).items():
            rows.setdefault(key, []).append(row)
    return rows


def pick_row(rows: list[dict], digest: str) -> dict | None:
    """The last cached row of a clip computed from the current audio, else None."""
    current = [r for r in rows if r.get("digest") == digest]
    return current[-1] if current else None


def append_row(path: Path, row: dict) -> None:
    """Append one finished result and flush it to disk (what a rerun skips)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row, allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ---- one tokenizer × one clip -------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_clip(
    tokenizer, item: Item, reference: torch.Tensor, speech_quality: bool = True
) -> tuple[dict, torch.Tensor]:
    """Encode, decode (each timed), score; returns (the cache row, the 16 kHz reconstruction)."""
    device = tokenizer.device
    _sync(device)
    start = time.perf_counter()
    latents = tokenizer.encode(reference, sample_rate=COMPARE_RATE)
    _sync(device)
    encoded = time.perf_counter()
    decoded = tokenizer.decode(latents)
    _sync(device)
    done = time.perf_counter()
    n = reference.shape[-1]
    estimate = restore_rate_and_length(decoded, tokenizer.output_sample_rate, COMPARE_RATE, n)
    estimate = match_length(estimate.detach().cpu().float(), n, item.name)
    row = {
        "id": item.id,
        "domain": item.domain,
        "seconds": n / COMPARE_RATE,
        "encode_s": encoded - start,
        "decode_s": done - encoded,
        "metrics": clip_metrics(reference, estimate, item.domain, speech_quality),
        "embedding": latents.float().mean(0).cpu().tolist(),
    }
    return row, estimate


@dataclass
class TokenizerResult:
    """Everything the table says about one tokenizer."""

    name: str
    model: str
    facts: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    probes: dict = field(default_factory=dict)
    computed: int = 0
    failed: bool = False


@dataclass
class Comparison:
    """The whole comparison: per-tokenizer results, the clips and the settings."""

    results: list[TokenizerResult]
    items: list[Item]
    tasks: list[str]
    examples: list[str]
    errors: list[str]
    notes: list[str] = field(default_factory=list)


def task_labels(items: Sequence[Item], task: str, labels: dict[str, dict[str, str]]) -> dict:
    """{clip id: label} of one probe task: "domain" from the items, else `labels[task]` (a
    labels file), else the dataset column of that name (the synthetic corpus's language,
    voice, instrument, event ...). Clips without a value are left out."""
    if task == "domain":
        found = {it.id: it.domain for it in items}
    elif task in labels:
        found = dict(labels[task])
    else:
        found, column = {}, {}  # one read of the column per dataset
        for it in items:
            data = getattr(it.source, "dataset", None)
            if data is not None and task in data.column_names:
                if id(data) not in column:
                    column[id(data)] = data[task]
                found[it.id] = column[id(data)][it.row]
    return {k: str(v) for k, v in found.items() if v not in (None, "")}


def probe_task(
    embeddings: dict[str, list[float]], labels: dict[str, str], config: ProbeConfig, folds: int
) -> dict:
    """Stratified k-fold linear-probe and kNN accuracy (mean over folds) on pooled latents."""
    ids = sorted(set(embeddings) & set(labels))
    classes = sorted({labels[i] for i in ids})
    if len(classes) < 2:
        return {"note": f"needs 2 classes or more, found {len(classes)}"}
    x = torch.tensor([embeddings[i] for i in ids], dtype=torch.float32)
    y = torch.tensor([classes.index(labels[i]) for i in ids])
    linear, knn = [], []
    for split in fold_splits(assign_folds([labels[i] for i in ids], folds, config.seed)):
        train, valid, test = (split[k] for k in ("train", "validation", "test"))
        if min(len(train), len(valid), len(test)) == 0:
            continue
        t = torch.as_tensor
        model, _ = train_linear_probe(
            Split(x[t(train)], y[t(train)]), Split(x[t(valid)], y[t(valid)]),
            len(classes), "multiclass", config,
        )  # fmt: skip
        probs = predict(model, Split(x[t(test)], y[t(test)]), "multiclass")
        linear.append(accuracy(probs.argmax(-1), y[t(test)].numpy()))
        votes = knn_predict(x[t(train)], y[t(train)], x[t(test)], len(classes), config.knn_k,
                            config.knn_temperature)  # fmt: skip
        knn.append(accuracy(votes.argmax(-1), y[t(test)].numpy()))
    if not linear:
        return {"note": "too few clips per class for k-fold"}
    return {
        "linear": float(np.mean(linear)),
        "knn": float(np.mean(knn)),
        "clips": len(ids),
        "classes": len(classes),
    }


# ---- the run ------------------------------------------------------------------------------
def _default_loader(model: str, device):
    from sonotok.tokenizer.interface import load_tokenizer

    return load_tokenizer(model).to(device).eval()


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="clip", leave=False, disable=None if enabled else True)


def _run_tokenizer(
    result: TokenizerResult,
    tokenizer,
    items: Sequence[Item],
    out_dir: Path,
    examples: set[str],
    say: Callable[[str], None],
    progress: bool,
    speech_quality: bool = True,
    rank: int | None = None,
) -> None:
    """Every clip not in the cache: compute, append to the cache (this rank's own file in a
    multi-process run), keep example audio."""
    path = cache_path(out_dir, result.model, rank)
    cached = cached_rows(cache_files(out_dir, result.model))
    warmed = False
    with _bar(len(items), result.name, progress) as bar:
        for item in items:
            try:
                digest = item.digest()
                row = pick_row(cached.get(item.id, []), digest)
                if _needs_rerun(row, digest, speech_quality):
                    reference = item.load(COMPARE_RATE)
                    if not warmed:  # first call pays one-time set-up; keep it out of the RTF
                        tokenizer.decode(
                            tokenizer.encode(reference[:COMPARE_RATE], sample_rate=COMPARE_RATE)
                        )
                        warmed = True
                    row, estimate = run_clip(
                        tokenizer, item, reference, speech_quality=speech_quality
                    )
                    row["digest"] = digest
                    if item.id in examples:
                        folder = out_dir / "audio"
                        write_audio(folder / _safe(result.name) / f"{_safe(item.id)}.wav",
                                    estimate, COMPARE_RATE)  # fmt: skip
                        ref_path = folder / "reference" / f"{_safe(item.id)}.wav"
                        if not ref_path.is_file():
                            write_audio(ref_path, reference, COMPARE_RATE)
                    append_row(path, row)
                    result.computed += 1
                result.rows.append(row)
            except (
                SonotokError,
                AudioInputError,
                EvaluationInputError,
                ValueError,
                RuntimeError,
            ) as err:
                message = f"{result.name}: {item.name}: {err}"
                result.errors.append(message)
                say(f"error: {message}")
            bar.update(1)


def _shard_summary(out_dir: Path, rank: int) -> Path:
    return out_dir / "cache" / f"shard.{rank}.json"


def _share_shard(
    results: list[TokenizerResult],
    items: Sequence[Item],
    out_dir: Path,
    rank: int,
    world: int,
    barrier: Callable[[], None] | None,
) -> None:
    """Each process records what it did (clips computed, errors, the audio digest of each row);
    after the barrier the main process gathers every rank's rows from the cache files, in the
    suite's order, so its results are what one process would have computed."""
    summary = {
        r.model: {
            "computed": r.computed,
            "errors": r.errors,
            "digests": {row["id"]: row["digest"] for row in r.rows},
        }
        for r in results
    }
    path = _shard_summary(out_dir, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(summary))
    os.replace(partial, path)
    if barrier is not None:
        barrier()
    if rank != 0:
        return
    others = [json.loads(_shard_summary(out_dir, r).read_text()) for r in range(1, world)]
    for result in results:
        if result.failed:  # a load failure is the same on every process: reported once
            continue
        digests = {row["id"]: row["digest"] for row in result.rows}
        for other in others:
            done = other.get(result.model, {})
            result.computed += done.get("computed", 0)
            result.errors += done.get("errors", [])
            digests.update(done.get("digests", {}))
        cached = cached_rows(cache_files(out_dir, result.model))
        picked = (pick_row(cached.get(it.id, []), digests.get(it.id, "")) for it in items)
        result.rows = [row for row in picked if row is not None]


def compare(
    models: Sequence[str],
    items: Sequence[Item],
    out_dir: str | os.PathLike,
    tasks: Sequence[str] = ("domain",),
    labels: dict[str, dict[str, str]] | None = None,
    device: str | torch.device = "cpu",
    probe_config: ProbeConfig | None = None,
    folds: int = 3,
    loader: Callable | None = None,
    say: Callable[[str], None] = print,
    progress: bool = True,
    speech_quality: bool = True,
    rank: int = 0,
    world: int = 1,
    barrier: Callable[[], None] | None = None,
) -> Comparison | None:
    """Run the comparison of `models` (folders or hub ids, any registered family) on `items`.

    `labels` holds extra tasks {task: {clip id: label}}; "domain" comes from the items.
    `loader(model, device)` builds a tokenizer (default: `load_tokenizer`). `speech_quality`
    False skips the model-based speech metrics (speaker similarity, DNSMOS: the slowest).
    Process `rank` of `world` (accelerate) scores every `world`-th clip; `barrier` (accelerate's
    `wait_for_everyone`) then lets the main process (rank 0) merge and return the comparison;
    the other ranks return None."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loader = loader or _default_loader
    labels = labels or {}
    probe_config = probe_config or ProbeConfig()
    items = list(items)
    examples = {items[i].id for i in sorted(pick_examples(len(items), NUM_EXAMPLES))}
    results = []
    for name, model in zip(display_names(models), models):
        result = TokenizerResult(name=name, model=str(model))
        results.append(result)
        try:
            tokenizer = loader(model, device)
            result.facts = tokenizer.describe()
        except (SonotokError, OSError, ValueError, RuntimeError, KeyError) as err:
            result.failed = True
            message = f"{name}: cannot load the tokenizer: {err}"
            result.errors.append(message)
            if rank == 0:  # every process fails alike; say it once
                say(f"error: {message}")
            continue
        _run_tokenizer(
            result, tokenizer, items[rank::world], out, examples, say, progress and rank == 0,
            speech_quality, rank if world > 1 else None,
        )  # fmt: skip
        del tokenizer
    if world > 1:
        _share_shard(results, items, out, rank, world, barrier)
    if rank != 0:
        return None
    for result in results:
        if result.failed:
            continue
        embeddings = {r["id"]: r["embedding"] for r in result.rows}
        for task in tasks:
            result.probes[task] = probe_task(
                embeddings, task_labels(items, task, labels), probe_config, folds
            )
    errors = [e for r in results for e in r.errors]
    notes = [
        f"{r.name}: probe {task}: {probe['note']}"
        for r in results
        for task, probe in r.probes.items()
        if "note" in probe
    ]
    return Comparison(results, items, list(tasks), sorted(examples), errors, notes)


# ---- the table ------------------------------------------------------------------------------
def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def domains_of(comparison: Comparison) -> list[str]:
    """The suite's domains, speech first (the paper's Table 3 before Table 4)."""
    found = sorted({it.domain or "all" for it in comparison.items})
    return sorted(found, key=lambda d: (d not in SPEECH_DOMAINS, d))


def metrics_of(domain: str, comparison: Comparison) -> tuple[str, ...]:
    """A domain's metric columns; the model-based speech ones only when some clip has them."""
    if domain not in SPEECH_DOMAINS:
        return GENERAL_METRICS
    scored = {m for r in comparison.results for row in r.rows for m in row["metrics"]}
    return tuple(m for m in SPEECH_METRICS if m not in MODEL_METRICS or m in scored)


def columns(comparison: Comparison) -> list[tuple[str, str, str]]:
    """(group, key, header) of every table column, in the paper's order."""
    cols = []
    for domain in domains_of(comparison):
        metrics = metrics_of(domain, comparison)
        cols += [("reconstruction", f"{domain}/{m}", f"{domain} {m}") for m in metrics]
    for task in comparison.tasks:
        cols += [("understanding", f"{task}/{p}", f"{task} {p}") for p in ("linear", "knn")]
    cols += [
        ("cost", "parameters", "parameters"),
        ("cost", "frame_rate", "frame rate (Hz)"),
        ("cost", "bitrate", "bitrate (bit/s)"),
        ("cost", "latent_values_per_second", "latent values/s"),
        ("cost", "encode_rtf", "encode RTF"),
        ("cost", "decode_rtf", "decode RTF"),
    ]
    return cols


def table_row(result: TokenizerResult, comparison: Comparison) -> dict:
    """One tokenizer's values by column key (NaN where a value does not apply or failed)."""
    row: dict = {"tokenizer": result.name, "model": result.model}
    facts = result.facts
    row["model_type"] = facts.get("model_type", "")
    row["kind"] = "" if not facts else ("discrete" if facts.get("discrete") else "continuous")
    for domain in domains_of(comparison):
        rows = [r for r in result.rows if (r["domain"] or "all") == domain]
        for m in metrics_of(domain, comparison):
            row[f"{domain}/{m}"] = _mean([r["metrics"].get(m, math.nan) for r in rows])
    for task in comparison.tasks:
        probe = result.probes.get(task, {})
        for p in ("linear", "knn"):
            row[f"{task}/{p}"] = probe.get(p, math.nan)
    row["parameters"] = facts.get("parameters", math.nan)
    row["frame_rate"] = facts.get("frame_rate", math.nan)
    row["bitrate"] = facts.get("bitrate") if facts.get("bitrate") is not None else math.nan
    if facts:
        row["latent_values_per_second"] = facts["frame_rate"] * facts["latent_dim"]
    else:
        row["latent_values_per_second"] = math.nan
    seconds = sum(r["seconds"] for r in result.rows)
    for step in ("encode", "decode"):
        spent = sum(r[f"{step}_s"] for r in result.rows)
        row[f"{step}_rtf"] = spent / seconds if seconds else math.nan
    row["clips"] = len(result.rows)
    row["errors"] = len(result.errors)
    return row
