"""Probes on frozen embeddings, following the X-ARES protocol.

- Clip tasks (one class per clip, or several with `multilabel`): masked mean pooling over
  the clip's own frames → LayerNorm → Linear, trained with Adam (lr 1e-3), batch 32,
  10 epochs, cosine decay to 0.1 × lr, keeping the epoch that scores best on validation.
  Cross-entropy and accuracy for multiclass; BCE and mAP for multilabel.
- Frame tasks (sound event detection): the same LayerNorm → Linear applied to every
  frame, BCE on frame targets, segment-based F1 (1 s segments) as the metric.
- kNN (multiclass): cosine similarity of L2-normalised mean-pooled embeddings, the k = 10
  nearest training clips vote with weights softmax(sim / 0.07).
X-ARES values: github jimbozhang/xares `src/xares/task.py`, `trainer.py`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

TASKS = ("multiclass", "multilabel", "frame")


@dataclass
class ProbeConfig:
    """Training settings; the defaults are X-ARES's."""

    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 32
    final_lr_ratio: float = 0.1  # cosine schedule ends at 0.1 × lr
    knn_k: int = 10
    knn_temperature: float = 0.07
    threshold: float = 0.5  # frame / multilabel decisions
    segment_seconds: float = 1.0  # segment-based F1
    frame_rate: float = 25.0
    seed: int = 0

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> ProbeConfig:
        """Settings from a YAML file (e.g. configs/probe/xares.yaml); `overrides` that
        are not None win. Unknown keys are an error naming the file."""
        import yaml

        values = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown probe settings {unknown}; known: {sorted(known)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# ---- models -------------------------------------------------------------------------------
class LinearProbe(nn.Module):
    """LayerNorm → Linear. x: (B, D) → (B, C), or (B, T, D) → (B, T, C) frame-wise."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(x))


def masked_mean(frames: list[torch.Tensor]) -> torch.Tensor:
    """Clips of (T_i, D) frames → (N, D): each clip averaged over its own frames only."""
    return torch.stack([f.float().mean(0) for f in frames])


def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, D) clips → padded (N, T, D) and mask (N, T) True on real frames."""
    length = max(f.shape[0] for f in frames)
    x = torch.zeros(len(frames), length, frames[0].shape[-1])
    mask = torch.zeros(len(frames), length, dtype=torch.bool)
    for i, f in enumerate(frames):
        x[i, : f.shape[0]] = f.float()
        mask[i, : f.shape[0]] = True
    return x, mask


# ---- metrics ------------------------------------------------------------------------------
def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    return float((pred == target).mean()) if len(target) else float("nan")


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts; rows are true classes, columns predictions."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (target, pred), 1)
    return cm


def average_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """AP of one class: mean precision at the rank of each positive (ties broken by order)."""
    positives = int(target.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = target[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / positives)


def mean_average_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """mAP over classes that have at least one positive. scores, target: (N, C)."""
    aps = [average_precision(scores[:, c], target[:, c]) for c in range(target.shape[1])]
    aps = [a for a in aps if not math.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")


def segment_f1(
    pred: list[np.ndarray], target: list[np.ndarray], frames_per_segment: int
) -> dict[str, float]:
    """Segment-based micro F1 (as sed_eval): each clip is cut into segments of
    `frames_per_segment` frames; a class is active in a segment if any frame is.
    pred, target: per clip (T_i, C) booleans."""
    tp = fp = fn = 0
    for p, t in zip(pred, target):
        for s in range(0, t.shape[0], frames_per_segment):
            ps, ts = p[s : s + frames_per_segment].any(0), t[s : s + frames_per_segment].any(0)
            tp += int((ps & ts).sum())
            fp += int((ps & ~ts).sum())
            fn += int((~ps & ts).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return {"segment_f1": f1, "segment_precision": precision, "segment_recall": recall}


# ---- training -----------------------------------------------------------------------------
@dataclass
class Split:
    """One task's data for one split: inputs (pooled (N, D) or frame lists) and targets."""

    x: torch.Tensor | list[torch.Tensor]
    y: torch.Tensor | list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.y)


def _batch(split: Split, index: list[int], task: str):
    if task == "frame":
        x, mask = pad_frames([split.x[i] for i in index])
        y, _ = pad_frames([split.y[i] for i in index])
        return x, y, mask
    return split.x[index], split.y[index], None


def _loss(logits, y, mask, task: str) -> torch.Tensor:
    if task == "multiclass":
        return nn.functional.cross_entropy(logits, y)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y.float(), reduction="none")
    if mask is not None:
        return loss[mask].mean()
    return loss.mean()


@torch.no_grad()
def predict(model: LinearProbe, split: Split, task: str, batch_size: int = 256):
    """Scores: (N, C) class probabilities (softmax / sigmoid), or per clip (T_i, C) for frames."""
    model.eval()
    if task == "frame":
        out = []
        for i in range(0, len(split), batch_size):
            index = list(range(i, min(i + batch_size, len(split))))
            x, _, mask = _batch(split, index, task)
            probs = torch.sigmoid(model(x))
            out += [probs[j, : int(mask[j].sum())].numpy() for j in range(len(index))]
        return out
    logits = torch.cat(
        [model(split.x[i : i + batch_size]) for i in range(0, len(split), batch_size)]
    )
    return (torch.softmax(logits, -1) if task == "multiclass" else torch.sigmoid(logits)).numpy()


def score(probs, split: Split, task: str, config: ProbeConfig) -> dict[str, float]:
    """The task's metrics; the first key is the one used to pick the best epoch."""
    if task == "multiclass":
        return {"accuracy": accuracy(probs.argmax(-1), split.y.numpy())}
    if task == "multilabel":
        return {
            "mAP": mean_average_precision(probs, split.y.numpy()),
            "accuracy_at_0.5": float(
                ((probs > config.threshold) == split.y.numpy().astype(bool)).all(1).mean()
            ),
        }
    frames_per_segment = max(1, round(config.segment_seconds * config.frame_rate))
    return segment_f1(
        [p > config.threshold for p in probs],
        [t.numpy().astype(bool) for t in split.y],
        frames_per_segment,
    )


def train_linear_probe(
    train: Split, valid: Split, num_classes: int, task: str, config: ProbeConfig
) -> tuple[LinearProbe, list[dict]]:
    """Train LayerNorm → Linear with the X-ARES schedule; returns the model at the epoch
    with the best validation metric, and per-epoch history."""
    if task not in TASKS:
        raise ValueError(f"task={task!r}; choose one of {TASKS}")
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    dim = train.x[0].shape[-1]
    model = LinearProbe(dim, num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    end = config.final_lr_ratio
    # Cosine from lr to 0.1·lr over the epochs, set at each epoch start (as X-ARES does).
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda e: end + (1 - end) * (1 + math.cos(math.pi * e / config.epochs)) / 2,
    )
    best, best_value, history = None, -math.inf, []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            x, y, mask = _batch(train, order[i : i + config.batch_size], task)
            loss = _loss(model(x), y, mask, task)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
        schedule.step()
        metrics = score(predict(model, valid, task), valid, task, config)
        value = next(iter(metrics.values()))
        history.append({"epoch": epoch + 1, "train_loss": total / len(train), **metrics})
        if not math.isnan(value) and value > best_value:
            best_value, best = value, copy.deepcopy(model.state_dict())
    if best is not None:
        model.load_state_dict(best)
    return model.eval(), history


def knn_predict(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    num_classes: int,
    k: int = 10,
    temperature: float = 0.07,
) -> np.ndarray:
    """Weighted kNN on cosine similarity: (N_test, C) vote shares. x: pooled (N, D)."""
    a = nn.functional.normalize(train_x.float(), dim=-1)
    b = nn.functional.normalize(test_x.float(), dim=-1)
    sim = b @ a.T
    top, index = sim.topk(min(k, len(train_x)), dim=-1)
    votes = torch.zeros(len(test_x), num_classes)
    votes.scatter_add_(1, train_y[index], torch.softmax(top / temperature, dim=-1))
    return votes.numpy()


# ---- folds --------------------------------------------------------------------------------
def assign_folds(labels: list, num_folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each item, stratified by label (each class spread evenly), deterministic."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), dtype=np.int64)
    keys = [str(x) for x in labels]
    for key in sorted(set(keys)):
        members = np.array([i for i, k in enumerate(keys) if k == key])
        rng.shuffle(members)
        offset = rng.integers(num_folds)
        folds[members] = (np.arange(len(members)) + offset) % num_folds
    return folds


def fold_splits(folds: np.ndarray) -> list[dict[str, np.ndarray]]:
    """k-fold rounds: test = fold f, validation = the next fold, train = the rest."""
    values = sorted(set(folds.tolist()))
    if len(values) < 3:
        raise ValueError(
            f"k-fold needs at least 3 folds (got {len(values)}); use --folds 3 or more"
        )
    rounds = []
    for n, f in enumerate(values):
        v = values[(n + 1) % len(values)]
        rounds.append(
            {
                "name": f"fold {f}",
                "train": np.flatnonzero((folds != f) & (folds != v)),
                "validation": np.flatnonzero(folds == v),
                "test": np.flatnonzero(folds == f),
            }
        )
    return rounds
