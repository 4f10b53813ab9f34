"""What a probe trains on: embeddings of a labelled dataset, computed once and cached.

Sources: a folder-per-class tree (FOLDER/<class>/<file>), any dataset `sonotok extract`
reads that has a label column, or a latent dataset `sonotok extract` already wrote
(columns `latents` or `embedding`). Embeddings are extracted with the extraction
pipeline into a cache folder named by a hash of (source, its files, model, features),
so a second probe on the same data and model reads them back instead of re-encoding.

Labels: multiclass — one class per clip (ClassLabel, int or string column, default
`label`); multilabel — a list of classes per clip (or a ';'/','-separated string,
default `labels`); frame — a list of events {label, onset, offset} in seconds per clip
(default `events`), turned into 25 Hz frame targets.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sonotok.tokenizer.config import ConfigError

from .probe import TASKS, masked_mean

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "eval": "test",
    "evaluation": "test",
}
DEFAULT_LABEL_COLUMN = {"multiclass": "label", "multilabel": "labels", "frame": "events"}


@dataclass
class ProbeDataset:
    """Embeddings and targets of N clips.

    pooled: (N, D) masked mean of each clip's frames; frames: per clip (T_i, D) (frame
    task only); targets: (N,) class index (multiclass), (N, C) multi-hot (multilabel) or
    per clip (T_i, C) (frame); split: per clip "train"/"validation"/"test" when the data
    says so; folds: predefined fold per clip when a fold column was named.
    """

    task: str
    classes: list[str]
    ids: list[str]
    pooled: torch.Tensor
    frames: list[torch.Tensor] | None
    targets: torch.Tensor | list[torch.Tensor]
    split: list[str] | None = None
    folds: np.ndarray | None = None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sonotok" / "embeddings"


def _files_signature(path: Path) -> str:
    """Hash of the names, sizes and modification times of the files under a local path."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        h.update(
            f"{p.relative_to(path) if path.is_dir() else p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode()
        )
    return h.hexdigest()


def cache_key(source: str, model: str, features: str, pool: str, options: dict) -> str:
    """Names the cached embeddings of (source content, model, features, pooling)."""
    src, mdl = Path(source).expanduser(), Path(model).expanduser()
    key = {
        "source": str(src.resolve()) if src.exists() else source,
        "source_files": _files_signature(src) if src.exists() else None,
        "model": str(mdl.resolve()) if mdl.exists() else model,
        "model_files": _files_signature(mdl) if mdl.exists() else None,
        "features": features,
        "pool": pool,
        **options,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def embedded_dataset(
    source: str,
    model: str | None,
    features: str,
    task: str,
    cache_dir: str | Path | None = None,
    split: str | None = None,
    subset: str | None = None,
    audio_column: str | None = None,
    device: str = "auto",
    dtype: str = "fp32",
    batch_size: int = 16,
    label_column: str | None = None,
):
    """The latent dataset of `source`: the source itself if it already holds latents,
    else the cached extraction (made now if missing or unfinished). A missing label
    column is reported before any audio is encoded."""
    import datasets

    from sonotok.core.options import resolve_device
    from sonotok.core.sources import AUDIO_EXTENSIONS, open_audio_source, open_dataset
    from sonotok.extraction.extract import PLAN_FILE, ExtractConfig, extract

    path = Path(source).expanduser()
    if path.is_dir() and (path / "state.json").is_file():
        data, _, _ = open_dataset(path, split, subset)
        if "latents" in data.features or "embedding" in data.features:
            if task == "frame" and "latents" not in data.features:
                raise ConfigError(
                    f"{source}: holds mean-pooled embeddings; a frame task needs frame-level "
                    "latents (extract without --pool mean)"
                )
            return data
        if "codes" in data.features:
            raise ConfigError(
                f"{source}: holds only a discrete model's integer codes; probes train on "
                "continuous latents: extract with --features codes,latents (or latents), or "
                "probe the audio itself"
            )
    from sonotok.defaults import model_or_default

    model = model_or_default(model, "tokenizer")  # audio and no tokenizer named: the default
    pool = "none" if task == "frame" else "mean"
    options = {"split": split, "subset": subset, "audio_column": audio_column}
    folder = Path(cache_dir or default_cache_dir()) / cache_key(
        source, model, features, pool, options
    )
    plan = folder / PLAN_FILE
    if not (plan.is_file() and json.loads(plan.read_text()).get("totals", {}).get("complete")):
        from sonotok.tokenizer.interface import load_tokenizer

        audio = open_audio_source(
            source,
            split=split,
            subset=subset,
            audio_column=audio_column,
            audio_extensions=AUDIO_EXTENSIONS,
            class_from_folder=path.is_dir() and not any(p.is_file() for p in path.iterdir()),
        )
        label_column = label_column or DEFAULT_LABEL_COLUMN.get(task)
        if label_column not in audio.dataset.features:
            raise ConfigError(
                f"{source}: no label column {label_column!r}; columns are "
                f"{[c for c in audio.dataset.features if c != audio.audio_column]}; name it with "
                "--label-column"
            )
        tokenizer = load_tokenizer(model, device=resolve_device(device), compute_dtype=dtype)
        print(f"probe: embedding {len(audio.dataset)} clips into {folder}", file=sys.stderr)
        config = ExtractConfig(
            output=str(folder),
            features=features,
            pool=pool,
            batch_size=batch_size,
            resume=True,
            model_name=model,
            source_info={"source": source, **options},
        )
        extract(tokenizer, audio, config)
    else:
        print(f"probe: using cached embeddings in {folder}", file=sys.stderr)
    return datasets.load_from_disk(str(folder))


def embedding_model(data) -> str | None:
    """The model that computed a latent dataset's embeddings, as its extraction plan
    (extract.json beside the data files) records it; None when the data does not say."""
    from sonotok.extraction.extract import PLAN_FILE

    for entry in getattr(data, "cache_files", None) or []:
        plan = Path(entry["filename"]).parent / PLAN_FILE
        if plan.is_file():
            return json.loads(plan.read_text()).get("model") or None
    return None


def unreadable_clips(data) -> tuple[list[dict], Path | None]:
    """The rows a latent dataset's extraction could not read (its errors.jsonl: index, error)
    and that file; ([], None) when the data records none."""
    from sonotok.extraction.extract import ERRORS_FILE

    for entry in getattr(data, "cache_files", None) or []:
        path = Path(entry["filename"]).parent / ERRORS_FILE
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            return [json.loads(line) for line in lines if line.strip()], path
    return [], None


def _class_names(values: list, feature) -> list[str]:
    names = getattr(feature, "names", None)
    return list(names) if names else sorted({str(v) for v in values})


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        sep = ";" if ";" in value else ","
        return [v.strip() for v in value.split(sep) if v.strip()]
    return list(value)


def frame_targets(
    events: list[dict], num_frames: int, classes: list[str], frame_rate: float
) -> torch.Tensor:
    """Events {label, onset, offset} (seconds) → (T, C) targets; a frame is active when its
    centre lies inside an event."""
    y = torch.zeros(num_frames, len(classes))
    centres = (torch.arange(num_frames) + 0.5) / frame_rate
    for e in events or []:
        c = classes.index(str(e["label"]))
        y[(centres >= float(e["onset"])) & (centres < float(e["offset"])), c] = 1
    return y


def probe_dataset(
    data,
    task: str,
    label_column: str | None = None,
    split_column: str | None = None,
    fold_column: str | None = None,
    frame_rate: float = 25.0,
    source: str = "data",
) -> ProbeDataset:
    """A latent dataset (from `embedded_dataset`) → embeddings and targets for `task`."""
    from sonotok.extraction.extract import as_float

    if task not in TASKS:
        raise ConfigError(f"task={task!r}; choose one of {TASKS}")
    label_column = label_column or DEFAULT_LABEL_COLUMN[task]
    if label_column not in data.features:
        raise ConfigError(
            f"{source}: no label column {label_column!r}; columns are {list(data.features)}; "
            "name it with --label-column"
        )
    for name in (split_column, fold_column):
        if name is not None and name not in data.features:
            raise ConfigError(f"{source}: no column {name!r}; columns are {list(data.features)}")
    if split_column is None and "split" in data.features:
        split_column = "split"
    if len(data) == 0:
        raise ConfigError(
            f"{source}: no clips could be embedded; see errors.jsonl next to the cache"
        )
    storage = "float32"
    description = getattr(data.info, "description", "") or ""
    if "bfloat16" in description:
        storage = "bfloat16"
    labels = data[label_column]
    feature = data.features[label_column]
    ids = (
        [str(v) for v in data["id"]]
        if "id" in data.features
        else [str(i) for i in range(len(data))]
    )
    frames = None
    if "latents" in data.features:
        frames = [as_float(z, storage) for z in data.with_format("numpy")["latents"]]
        pooled = masked_mean(frames)
    else:
        pooled = torch.stack([as_float(z, storage) for z in data.with_format("numpy")["embedding"]])
    if task == "multiclass":
        classes = _class_names(labels, feature)
        lookup = {c: i for i, c in enumerate(classes)}
        targets = torch.tensor(
            [int(v) if getattr(feature, "names", None) else lookup[str(v)] for v in labels]
        )
    elif task == "multilabel":
        inner = getattr(feature, "feature", None)
        lists = [_as_list(v) for v in labels]
        names = getattr(inner, "names", None)
        lists = [[names[int(x)] if names else str(x) for x in v] for v in lists]
        classes = sorted({x for v in lists for x in v})
        targets = torch.zeros(len(lists), len(classes))
        for i, v in enumerate(lists):
            for x in v:
                targets[i, classes.index(x)] = 1
    else:
        if frames is None:
            raise ConfigError(f"{source}: a frame task needs frame-level latents")
        classes = sorted({str(e["label"]) for v in labels for e in (v or [])})
        targets = [
            frame_targets(v, f.shape[0], classes, frame_rate) for v, f in zip(labels, frames)
        ]
    split = None
    if split_column is not None:
        raw = [str(v).lower() for v in data[split_column]]
        unknown = sorted({v for v in raw if v not in SPLIT_NAMES})
        if unknown:
            raise ConfigError(
                f"{source}: split column {split_column!r} has values {unknown}; use train, "
                "validation and test"
            )
        split = [SPLIT_NAMES[v] for v in raw]
    folds = np.asarray([str(v) for v in data[fold_column]]) if fold_column else None
    if folds is not None:
        folds = np.unique(folds, return_inverse=True)[1]
    return ProbeDataset(
        task, classes, ids, pooled, frames if task == "frame" else None, targets, split, folds
    )
