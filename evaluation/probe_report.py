"""Run a probe over its splits or folds and write what it found: OUT/metrics.json and,
for multiclass, OUT/confusion_<method>.png (test predictions of every fold summed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .probe import (
    ProbeConfig,
    Split,
    accuracy,
    assign_folds,
    confusion_matrix,
    fold_splits,
    knn_predict,
    predict,
    score,
    train_linear_probe,
)
from .probe_data import ProbeDataset

METHODS = ("linear", "knn")


def rounds_for(data: ProbeDataset, num_folds: int, seed: int = 0) -> list[dict]:
    """The data's own train/validation/test split when it has one, else k folds
    (predefined fold column, or stratified folds assigned here)."""
    if data.split is not None:
        split = np.asarray(data.split)
        parts = {name: np.flatnonzero(split == name) for name in ("train", "validation", "test")}
        if len(parts["train"]) == 0 or len(parts["test"]) == 0:
            raise ValueError("the split column needs 'train' and 'test' rows")
        if len(parts["validation"]) == 0:
            parts["validation"] = parts["test"]  # no validation split: pick the epoch on test
        return [{"name": "split", **parts}]
    if data.folds is not None:
        return fold_splits(data.folds)
    if data.task == "multiclass":
        labels = data.targets.tolist()
    elif data.task == "multilabel":
        labels = ["|".join(map(str, np.flatnonzero(t.numpy()))) for t in data.targets]
    else:
        labels = [0] * len(data.ids)
    return fold_splits(assign_folds(labels, num_folds, seed))


def _take(data: ProbeDataset, index: np.ndarray, frame_level: bool) -> Split:
    idx = index.tolist()
    x = [data.frames[i] for i in idx] if frame_level else data.pooled[idx]
    y = [data.targets[i] for i in idx] if frame_level else data.targets[idx]
    return Split(x, y)


def _summary(per_round: list[dict]) -> dict:
    keys = [k for k, v in per_round[0].items() if isinstance(v, float)]
    out = {}
    for k in keys:
        values = np.array([r[k] for r in per_round], dtype=np.float64)
        out[k] = float(np.nanmean(values))
        if len(values) > 1:
            out[f"{k}_std"] = float(np.nanstd(values))
    return out


def run_probe(
    data: ProbeDataset,
    out_dir: str | Path,
    methods: tuple[str, ...] = METHODS,
    config: ProbeConfig | None = None,
    num_folds: int = 5,
    settings: dict | None = None,
) -> dict:
    """Train/evaluate each method on each round; write metrics.json (+ confusion PNGs)."""
    config = config or ProbeConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame_level = data.task == "frame"
    methods = tuple(m for m in methods if m == "linear" or data.task == "multiclass")
    results: dict = {m: {"rounds": []} for m in methods}
    C = len(data.classes)
    confusion = {m: np.zeros((C, C), dtype=np.int64) for m in methods}
    for r in rounds_for(data, num_folds, config.seed):
        train, valid, test = (
            _take(data, r[s], frame_level) for s in ("train", "validation", "test")
        )
        sizes = {"train": len(train), "validation": len(valid), "test": len(test)}
        if "linear" in methods:
            model, history = train_linear_probe(train, valid, C, data.task, config)
            probs = predict(model, test, data.task)
            metrics = score(probs, test, data.task, config)
            best = max(history, key=lambda h: h[next(iter(metrics))])["epoch"]
            results["linear"]["rounds"].append(
                {"name": r["name"], **sizes, "best_epoch": best, **metrics, "history": history}
            )
            if data.task == "multiclass":
                confusion["linear"] += confusion_matrix(probs.argmax(-1), test.y.numpy(), C)
        if "knn" in methods:
            probs = knn_predict(train.x, train.y, test.x, C, config.knn_k, config.knn_temperature)
            pred = probs.argmax(-1)
            results["knn"]["rounds"].append(
                {"name": r["name"], **sizes, "accuracy": accuracy(pred, test.y.numpy())}
            )
            confusion["knn"] += confusion_matrix(pred, test.y.numpy(), C)
    for m in methods:
        results[m]["mean"] = _summary(results[m]["rounds"])
        if data.task == "multiclass":
            results[m]["confusion_matrix"] = confusion[m].tolist()
            plot_confusion(confusion[m], data.classes, out / f"confusion_{m}.png", f"{m} probe")
    report = {
        "task": data.task,
        "classes": data.classes,
        "num_clips": len(data.ids),
        "embedding_dim": int(data.pooled.shape[-1]),
        "protocol": {
            "epochs": config.epochs,
            "lr": config.lr,
            "batch_size": config.batch_size,
            "final_lr_ratio": config.final_lr_ratio,
            "knn_k": config.knn_k,
            "knn_temperature": config.knn_temperature,
        },
        **(settings or {}),
        **results,
    }
    _write_json(out / "metrics.json", report)
    return report


def _write_json(path: Path, value) -> None:
    from sonotok.core.io import write_json

    write_json(path, value)


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sonotok.core.audio import atomic_path
    from sonotok.core.io import publish

    n = len(classes)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        color="white" if share[i, j] > 0.5 else "black",
                        fontsize=8,
                    )
    fig.tight_layout()
    tmp = atomic_path(path)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        publish(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
