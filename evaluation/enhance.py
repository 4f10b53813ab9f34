"""Speech-enhancement evaluation over (noisy, enhanced, clean) triples paired by id.

Per file, for the enhanced signal (and, as the baseline, for the noisy input, keys prefixed
``noisy_``): PESQ (wideband), STOI, SI-SDR against the clean reference; DNSMOS P.835
SIG / BAK / OVRL (+ P.808), which needs no reference; speaker similarity to the clean speech.
With noisy inputs, ``change_<metric>`` = enhanced − noisy per file, summarised with a paired
95% interval (what the enhancer did, not two independent means).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from sonotok.tokenizer import AudioInputError

from .data import EvaluationInputError, Item, pair
from .quality import QUALITY_SAMPLE_RATE, SpeakerSimilarity, dnsmos
from .report import Clip, Example, pick_examples
from .speech import pesq_wb, si_sdr, stoi
from .stats import CHANGE_PREFIX, add_changes, summarize

SIGNAL_METRICS = (
    "pesq", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808",
    "speaker_similarity",
)  # fmt: skip
# An enhancer may add or drop a few samples; more than this is treated as a pairing error.
MAX_LENGTH_MISMATCH = 1600


def enhancement_metrics(
    clean: torch.Tensor,
    signal: torch.Tensor,
    speaker: SpeakerSimilarity | None,
    sample_rate: int = QUALITY_SAMPLE_RATE,
) -> dict[str, float]:
    """PESQ, STOI, SI-SDR, DNSMOS and speaker similarity of ``signal`` against ``clean``."""
    scores = {
        "pesq": pesq_wb(clean, signal, sample_rate),
        "stoi": stoi(clean, signal, sample_rate),
        "si_sdr": si_sdr(clean, signal),
        **dnsmos(signal, sample_rate),
    }
    if speaker is not None:
        scores["speaker_similarity"] = speaker(clean, signal, sample_rate)
    return scores


def _common_length(waves: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    lengths = {k: w.shape[-1] for k, w in waves.items()}
    if max(lengths.values()) - min(lengths.values()) > MAX_LENGTH_MISMATCH:
        detail = ", ".join(f"{k} {n}" for k, n in lengths.items())
        raise EvaluationInputError(
            f"{name}: lengths differ too much ({detail} samples at 16 kHz); pair each enhanced "
            "file with the noisy and clean files it was made from"
        )
    n = min(lengths.values())
    return {k: w[:n] for k, w in waves.items()}


def evaluate_enhancement(
    noisy: Sequence[Item] | None,
    enhanced: Sequence[Item],
    clean: Sequence[Item],
    speaker_similarity: bool = True,
    num_examples: int = 8,
    settings: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict, list[Example]]:
    """Score every clean file's enhanced (and noisy) counterpart. Unpaired or unreadable files
    become entries of ``result["errors"]``; the rest is still evaluated."""
    sr = QUALITY_SAMPLE_RATE
    pairs, errors = pair(clean, enhanced, "enhanced")
    noisy_by_id = {it.id: it for it in noisy} if noisy is not None else None
    speaker = SpeakerSimilarity() if speaker_similarity else None
    signal_metrics = [m for m in SIGNAL_METRICS if speaker or m != "speaker_similarity"]
    metric_names = list(signal_metrics)
    if noisy is not None:  # per metric: noisy, enhanced, change (enhanced − noisy), side by side
        metric_names = [
            name for m in signal_metrics for name in (f"noisy_{m}", m, f"{CHANGE_PREFIX}{m}")
        ]
    error_rows = [{"file": f, "message": m} for f, m in errors]
    chosen = pick_examples(len(pairs), num_examples)
    rows, examples = [], []
    for index, (clean_item, enhanced_item) in enumerate(pairs):
        try:
            waves = {
                "clean": clean_item.load(sr),
                "enhanced": enhanced_item.load(sr),
            }
            if noisy_by_id is not None:
                noisy_item = noisy_by_id.get(clean_item.id)
                if noisy_item is None:
                    raise EvaluationInputError(
                        f"{clean_item.name}: no noisy file with id {clean_item.id!r}; name it with "
                        "the same relative path (any audio extension)"
                    )
                waves["noisy"] = noisy_item.load(sr)
            waves = _common_length(waves, enhanced_item.name)
            scores = enhancement_metrics(waves["clean"], waves["enhanced"], speaker, sr)
            if "noisy" in waves:
                baseline = enhancement_metrics(waves["clean"], waves["noisy"], speaker, sr)
                scores.update({f"noisy_{k}": v for k, v in baseline.items()})
        except (AudioInputError, EvaluationInputError, ValueError) as err:
            error_rows.append({"file": enhanced_item.name, "message": str(err)})
            if progress:
                progress(f"error: {err}")
            continue
        rows.append(
            {
                "id": clean_item.id,
                "domain": clean_item.domain,
                "path": enhanced_item.name,
                **scores,
            }
        )
        if index in chosen:
            order = [k for k in ("noisy", "enhanced", "clean") if k in waves]
            examples.append(
                Example(
                    id=clean_item.id,
                    clips=[Clip(k, waves[k], sr) for k in order],
                    metrics={k: scores[k] for k in ("pesq", "stoi", "si_sdr", "dnsmos_ovrl")},
                )
            )
    if noisy is not None:
        add_changes(rows, signal_metrics, baseline="noisy_")
    summary, per_domain = summarize(rows, metric_names)
    result = {
        "task": "enhance",
        "settings": {"sample_rate": sr, **(settings or {})},
        "metrics": metric_names,
        "summary": summary,
        "per_domain": per_domain,
        "items": rows,
        "errors": error_rows,
    }
    return result, examples
