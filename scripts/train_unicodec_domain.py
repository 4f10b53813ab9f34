"""Retrain UniCodec's automatic domain classifier (`tokenizer/unicodec/domain.py`).

Clips come from sonotok's synthetic corpus (`sonotok.corpus.make_clip`: speech, music, sounds and
noise; noise is labelled "sound", the partition UniCodec trained on AudioSet with), at several
lengths, resampled to 24 kHz; features are `DomainFeatures`; the probe is sonotok's
`LayerNorm → Linear` trained by `evaluation.probe.train_linear_probe`. Train, validation and
test clips are disjoint corpus indices. Writes `model.safetensors` and a README.md with the
held-out accuracy and confusion matrix to `--out` (default: the shipped asset folder)::

    python scripts/train_unicodec_domain.py --per-domain 160
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from sonotok.core.audio import resample
from sonotok.core.hub import write_weights
from sonotok.corpus import CorpusSpec, make_clip
from sonotok.evaluation.probe import (
    ProbeConfig,
    Split,
    accuracy,
    confusion_matrix,
    predict,
    train_linear_probe,
)
from sonotok.tokenizer.unicodec.configs import DOMAINS
from sonotok.tokenizer.unicodec.domain import SAMPLE_RATE, DomainFeatures, asset_folder

CORPUS_RATE = 16000
# corpus domain → UniCodec domain, and its share of the clips
SOURCES = {"speech": ("speech", 1.0), "music": ("music", 1.0), "sound": ("sound", 0.6),
           "noise": ("sound", 0.4)}  # fmt: skip
LENGTHS = (2.0, 4.0, 8.0)  # seconds


def clips(per_domain: int, first: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """`per_domain` clips per UniCodec domain from corpus indices first, first + 1, ..."""
    waves, labels = [], []
    for source, (domain, share) in SOURCES.items():
        count = round(per_domain * share)
        for i in range(count):
            spec = CorpusSpec(seconds=LENGTHS[i % len(LENGTHS)], seed=seed)
            wave = make_clip(spec, source, first + i).wave
            waves.append(resample(wave.astype(np.float32), CORPUS_RATE, SAMPLE_RATE))
            labels.append(DOMAINS.index(domain))
    return waves, labels


def featurize(waves: list[np.ndarray]) -> torch.Tensor:
    extractor = DomainFeatures()
    with torch.no_grad():
        return torch.stack([extractor(torch.from_numpy(w)) for w in waves])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=160, help="training clips per domain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=asset_folder())
    args = parser.parse_args()
    start = time.time()
    n = args.per_domain
    splits = {
        "train": clips(n, 0, args.seed),
        "validation": clips(n // 4, 10_000, args.seed),
        "test": clips(n // 2, 20_000, args.seed),
    }
    data = {k: Split(featurize(w), torch.tensor(y)) for k, (w, y) in splits.items()}
    config = ProbeConfig(epochs=args.epochs, lr=3e-3, batch_size=32, seed=args.seed)
    probe, history = train_linear_probe(data["train"], data["validation"], 3, "multiclass", config)
    probs = predict(probe, data["test"], "multiclass")
    pred, target = probs.argmax(-1), data["test"].y.numpy()
    acc = accuracy(pred, target)
    matrix = confusion_matrix(pred, target, 3).tolist()
    write_weights(args.out, {k: v for k, v in probe.state_dict().items()})
    counts = {k: len(v) for k, v in data.items()}
    report = {
        "test_accuracy": round(acc, 4),
        "validation_accuracy": history[-1]["accuracy"],
        "confusion_rows_true_cols_pred": matrix,
        "clips": counts,
        "classes": list(DOMAINS),
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(report))
    (args.out / "README.md").write_text(
        "# UniCodec domain classifier\n\n"
        "A `LayerNorm → Linear` probe on gain-normalised log-mel statistics "
        "(`sonotok.tokenizer.unicodec.domain.DomainFeatures`, 146 numbers per window) that picks "
        "UniCodec's codebook partition (speech / music / sound) when `domain='auto'`.\n\n"
        f"Trained by `scripts/train_unicodec_domain.py --per-domain {n} --seed {args.seed}` on "
        "sonotok's synthetic corpus (speech; music; sounds and noise as 'sound'; clips of "
        f"{', '.join(str(s) for s in LENGTHS)} s). Held-out test accuracy (disjoint corpus "
        f"indices, {counts['test']} clips): **{acc:.3f}**. Confusion (rows true, columns "
        f"predicted, order {list(DOMAINS)}): {matrix}.\n\n"
        "It knows synthetic audio only: on real recordings, pass the domain when it is known.\n"
    )


if __name__ == "__main__":
    main()
