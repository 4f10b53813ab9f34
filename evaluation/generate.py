"""Generation evaluation: generated set vs reference set (and captions).

Set-level: Fréchet distance per embedder (``fd_vggish`` is FAD, ``fd_panns`` the PANNs FD,
``fd_clap`` / ``fd_sonotok`` the same on CLAP / sonotok embeddings). Per item: KL divergence
between CNN14 tag distributions of a generated clip and its reference (paired by id;
``kl_softmax`` and ``kl_sigmoid``), and CLAP score (cosine of caption and audio embeddings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from sonotok.tokenizer import SAMPLE_RATE, AudioInputError

from .data import Item
from .distribution import (
    cosine_similarity,
    frechet_distance_from_embeddings,
    kl_divergence_sigmoid,
    kl_divergence_softmax,
)
from .embedders import Embedder, EmbeddingCache, embed_item
from .report import Clip, Example, pick_examples
from .stats import summarize

ITEM_METRICS = ("kl_softmax", "kl_sigmoid", "clap_score")


def evaluate_generation(
    generated: Sequence[Item],
    reference: Sequence[Item],
    embedders: Mapping[str, Embedder],
    cache: EmbeddingCache | None = None,
    captions: Mapping[str, str] | None = None,
    num_examples: int = 8,
    settings: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict, list[Example]]:
    """Distribution, paired-tag and caption metrics of ``generated`` against ``reference``.

    Args:
        embedders: name -> embedder; "panns" also gives KL, any with ``embed_text`` CLAP score.
        captions: id -> caption (items' own ``caption`` fields are used too).
    """
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
    for name, out in outputs.items():
        gen = [v["embedding"] for k, v in out.items() if k.startswith("gen:")]
        ref = [v["embedding"] for k, v in out.items() if k.startswith("ref:")]
        if sum(len(g) for g in gen) >= 2 and sum(len(r) for r in ref) >= 2:
            set_metrics[f"fd_{name}"] = frechet_distance_from_embeddings(
                np.concatenate(gen), np.concatenate(ref)
            )
        else:
            set_metrics[f"fd_{name}"] = math.nan

    rows = [
        {"id": it.id, "domain": it.domain, "path": it.name}
        for it in generated
        if it.name not in errors
    ]
    by_id = {row["id"]: row for row in rows}
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

    metric_names = [m for m in ITEM_METRICS if any(m in row for row in rows)]
    summary, per_domain = summarize(rows, metric_names)
    for m in metric_names:
        set_metrics[m] = summary[m]["mean"]

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
            Example(id=title, clips=clips, metrics={m: row[m] for m in metric_names if m in row})
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
        "set_metrics": set_metrics,
        "summary": summary,
        "per_domain": per_domain,
        "items": rows,
        "errors": [{"file": f, "message": m} for f, m in errors.items()],
    }
    return result, examples
