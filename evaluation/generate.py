"""Generation evaluation: generated set vs reference set (and captions).

Set-level: Fréchet distance per embedder (``fd_vggish`` is FAD, ``fd_panns`` the PANNs FD,
``fd_clap`` / ``fd_sonotok`` the same on CLAP / sonotok embeddings). Per item: KL divergence
between CNN14 tag distributions of a generated clip and its reference (paired by id;
``kl_softmax`` and ``kl_sigmoid``), CLAP score (cosine of caption and audio embeddings),
optionally the nearest reference domain (``domain_match``), and model-free signal checks
(duration, RMS level, peak). Small sets get a warning next to their Fréchet distances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from sonotok.tokenizer import SAMPLE_RATE, AudioInputError

from .data import Item
from .distribution import (
    cosine_similarity,
    frechet_distance_from_embeddings,
    frechet_sample_size_warning,
    kl_divergence_sigmoid,
    kl_divergence_softmax,
)
from .embedders import Embedder, EmbeddingCache, embed_item
from .report import Clip, Example, pick_examples
from .stats import summarize

ITEM_METRICS = ("kl_softmax", "kl_sigmoid", "clap_score", "domain_match")
# Checked on every generated clip, no model needed: length, loudness, peak (≥ 1 clips).
SIGNAL_METRICS = ("duration_s", "rms_dbfs", "peak")


def signal_stats(wave: torch.Tensor, sample_rate: int) -> dict[str, float]:
    """duration in s, RMS level in dB re full scale (−200 for digital silence), peak |x|."""
    x = wave.detach().double().reshape(-1)
    rms = float(x.square().mean().sqrt()) if x.numel() else 0.0
    return {
        "duration_s": x.numel() / sample_rate,
        "rms_dbfs": 20.0 * math.log10(max(rms, 1e-10)),
        "peak": float(x.abs().max()) if x.numel() else 0.0,
    }


def nearest_domains(
    outputs: Mapping[str, dict], reference: Sequence[Item]
) -> tuple[dict[str, str], list[str]]:
    """For each generated clip, the reference domain whose centroid (mean of the clips'
    mean embeddings) is nearest in Euclidean distance; and the domains compared."""
    by_domain: dict[str, list[np.ndarray]] = {}
    for item in reference:
        out = outputs.get(f"ref:{item.id}")
        if item.domain and out is not None:
            by_domain.setdefault(item.domain, []).append(out["embedding"].mean(axis=0))
    if len(by_domain) < 2:
        return {}, sorted(by_domain)
    names = sorted(by_domain)
    centroids = np.stack([np.mean(by_domain[d], axis=0) for d in names])
    nearest = {}
    for key, out in outputs.items():
        if key.startswith("gen:"):
            distance = np.linalg.norm(centroids - out["embedding"].mean(axis=0), axis=-1)
            nearest[key.removeprefix("gen:")] = names[int(distance.argmin())]
    return nearest, names


def evaluate_generation(
    generated: Sequence[Item],
    reference: Sequence[Item],
    embedders: Mapping[str, Embedder],
    cache: EmbeddingCache | None = None,
    captions: Mapping[str, str] | None = None,
    num_examples: int = 8,
    settings: dict | None = None,
    progress: Callable[[str], None] | None = None,
    domain_judge: str | None = None,
    frechet: bool = True,
) -> tuple[dict, list[Example]]:
    """Distribution, paired-tag, caption and signal metrics of ``generated`` against
    ``reference``.

    Args:
        embedders: name -> embedder; "panns" also gives KL, any with ``embed_text`` CLAP score.
        captions: id -> caption (items' own ``caption`` fields are used too).
        domain_judge: an embedder name; each generated clip gets ``nearest_domain`` (the
            reference domain nearest in that embedding) and, when the clip has a domain,
            ``domain_match`` (1 or 0). Needs references from at least two domains.
        frechet: compute ``fd_<embedder>`` (off for sets too small to mean anything).
    """
    if domain_judge is not None and domain_judge not in embedders:
        raise ValueError(f"domain_judge {domain_judge!r} is not one of {sorted(embedders)}")
    cache = cache or EmbeddingCache(None)
    errors: dict[str, str] = {}
    outputs: dict[str, dict[str, dict]] = {}  # embedder -> item key -> output
    for name, embedder in embedders.items():
        outputs[name] = {}
        for side, items in (("gen", generated), ("ref", reference)):
            for item in items:
                if item.name in errors:
                    continue
                try:
                    outputs[name][f"{side}:{item.id}"] = embed_item(embedder, item, cache)
                except (AudioInputError, ValueError) as err:
                    errors[item.name] = str(err)
                    if progress:
                        progress(f"error: {err}")

    set_metrics: dict[str, float] = {}
    samples: dict[str, dict] = {}
    warnings: list[dict] = []
    for name, out in outputs.items() if frechet else ():
        gen = [v["embedding"] for k, v in out.items() if k.startswith("gen:")]
        ref = [v["embedding"] for k, v in out.items() if k.startswith("ref:")]
        if sum(len(g) for g in gen) >= 2 and sum(len(r) for r in ref) >= 2:
            gen_rows, ref_rows = np.concatenate(gen), np.concatenate(ref)
            set_metrics[f"fd_{name}"] = frechet_distance_from_embeddings(gen_rows, ref_rows)
            samples[f"fd_{name}"] = {
                "generated": len(gen_rows), "reference": len(ref_rows), "dim": gen_rows.shape[1]
            }  # fmt: skip
            message = frechet_sample_size_warning(f"fd_{name}", **samples[f"fd_{name}"])
            if message:
                warnings.append({"metric": f"fd_{name}", "message": message})
        else:
            set_metrics[f"fd_{name}"] = math.nan

    rows = []
    for it in generated:
        if it.name in errors:
            continue
        try:
            stats = signal_stats(it.load(SAMPLE_RATE), SAMPLE_RATE)
        except AudioInputError as err:
            errors[it.name] = str(err)
            continue
        rows.append({"id": it.id, "domain": it.domain, "path": it.name, **stats})
    by_id = {row["id"]: row for row in rows}
    if domain_judge is not None:
        nearest, judged = nearest_domains(outputs[domain_judge], reference)
        if not judged or len(judged) < 2:
            warnings.append({"metric": "domain_match", "message": (
                f"domain check skipped: the references name {len(judged)} domain(s); it needs "
                "reference clips from at least two (sub-folders or a 'domain' column)")})  # fmt: skip
        for item_id, row in by_id.items():
            if item_id in nearest:
                row["nearest_domain"] = nearest[item_id]
                if row.get("domain"):
                    row["domain_match"] = float(nearest[item_id] == row["domain"])
    panns = outputs.get("panns")
    if panns is not None:
        for item_id, row in by_id.items():
            gen, ref = panns.get(f"gen:{item_id}"), panns.get(f"ref:{item_id}")
            if gen is None or ref is None:
                continue
            row["kl_softmax"] = float(
                kl_divergence_softmax(ref["logits"][None], gen["logits"][None])[0]
            )
            row["kl_sigmoid"] = float(
                kl_divergence_sigmoid(ref["logits"][None], gen["logits"][None])[0]
            )

    text_name = next((n for n, e in embedders.items() if hasattr(e, "embed_text")), None)
    caption_of = {it.id: it.caption for it in generated if it.caption}
    caption_of.update(captions or {})
    if text_name is not None and caption_of:
        scored = [i for i in by_id if i in caption_of and f"gen:{i}" in outputs[text_name]]
        if scored:
            text = embedders[text_name].embed_text([caption_of[i] for i in scored])
            audio = np.stack(
                [outputs[text_name][f"gen:{i}"]["embedding"].mean(axis=0) for i in scored]
            )
            for i, score in zip(scored, cosine_similarity(text, audio)):
                by_id[i]["clap_score"] = float(score)

    scored_metrics = [m for m in ITEM_METRICS if any(m in row for row in rows)]
    metric_names = [*scored_metrics, *SIGNAL_METRICS]
    summary, per_domain = summarize(rows, metric_names)
    for m in scored_metrics:
        set_metrics[m] = summary[m]["mean"]
    columns = [*metric_names, *(["nearest_domain"] if domain_judge is not None else [])]

    reference_by_id = {it.id: it for it in reference}
    generated_by_id = {it.id: it for it in generated}
    examples = []
    chosen = pick_examples(len(rows), num_examples)
    for index, row in enumerate(rows):
        if index not in chosen:
            continue
        try:
            clips = [Clip("generated", generated_by_id[row["id"]].load(SAMPLE_RATE), SAMPLE_RATE)]
            partner = reference_by_id.get(row["id"])
            if partner is not None and partner.name not in errors:
                clips.append(Clip("reference", partner.load(SAMPLE_RATE), SAMPLE_RATE))
        except AudioInputError:
            continue
        title = row["id"] + (f" — {caption_of[row['id']]}" if row["id"] in caption_of else "")
        examples.append(
            Example(id=title, clips=clips, metrics={m: row[m] for m in columns if m in row})
        )

    result = {
        "task": "generate",
        "settings": {
            "embedders": ", ".join(f"{n} ({e.cache_id})" for n, e in embedders.items()),
            "generated_files": len(generated),
            "reference_files": len(reference),
            **(settings or {}),
        },
        "metrics": metric_names,
        "columns": columns,
        "set_metrics": set_metrics,
        "set_metric_samples": samples,
        "warnings": warnings,
        "summary": summary,
        "per_domain": per_domain,
        "items": rows,
        "errors": [{"file": f, "message": m} for f, m in errors.items()],
    }
    return result, examples
