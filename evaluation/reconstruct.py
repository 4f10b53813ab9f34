"""Reconstruction evaluation: how close decoded audio is to its input.

Per file: DAC mel distance, DAC STFT distance, wideband PESQ, STOI and SI-SDR at 16 kHz;
summaries: mean and 95% interval overall and per domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from sonotok.tokenizer import SAMPLE_RATE, AudioInputError

from .data import EvaluationInputError, Item
from .report import Clip, Example, pick_examples
from .spectral import mel_distance, stft_distance
from .speech import pesq_wb, si_sdr, stoi
from .stats import summarize

RECONSTRUCTION_METRICS = ("mel_distance", "stft_distance", "pesq", "stoi", "si_sdr")

# A decoder may return a few samples more or fewer than it was given (frame rounding);
# beyond this many we call it a mismatch instead of silently trimming.
MAX_LENGTH_MISMATCH = 1280


def reconstruction_metrics(
    reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = SAMPLE_RATE
) -> dict[str, float]:
    """All reconstruction metrics of one (reference, estimate) pair of equal length."""
    return {
        "mel_distance": mel_distance(estimate, reference, sample_rate),
        "stft_distance": stft_distance(estimate, reference, sample_rate),
        "pesq": pesq_wb(reference, estimate, sample_rate) if sample_rate == 16000 else math.nan,
        "stoi": stoi(reference, estimate, sample_rate),
        "si_sdr": si_sdr(reference, estimate),
    }


def match_length(estimate: torch.Tensor, n: int, name: str) -> torch.Tensor:
    """Trim or zero-pad ``estimate`` to ``n`` samples, refusing large mismatches."""
    if abs(estimate.shape[-1] - n) > MAX_LENGTH_MISMATCH:
        raise EvaluationInputError(
            f"{name}: has {estimate.shape[-1]} samples but its reference has {n} at 16 kHz; "
            "pair each output with the input it was made from"
        )
    return torch.nn.functional.pad(estimate, (0, max(0, n - estimate.shape[-1])))[:n]


def evaluate_reconstruction(
    items: Sequence[Item],
    reconstruct: Callable[[Item, torch.Tensor], torch.Tensor],
    sample_rate: int = SAMPLE_RATE,
    num_examples: int = 8,
    settings: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict, list[Example]]:
    """Evaluate ``reconstruct(item, reference_wave) -> estimate_wave`` over ``items``.

    Files that cannot be read or scored are reported in ``result["errors"]`` and skipped.

    Returns:
        (result, examples): the result dict ``write_report`` takes, and report examples.
    """
    chosen = pick_examples(len(items), num_examples)
    rows, errors, examples = [], [], []
    for index, item in enumerate(items):
        try:
            reference = item.load(sample_rate)
            estimate = match_length(reconstruct(item, reference), reference.shape[-1], item.name)
            scores = reconstruction_metrics(reference, estimate, sample_rate)
        except (AudioInputError, EvaluationInputError, ValueError) as err:
            errors.append({"file": item.name, "message": str(err)})
            if progress:
                progress(f"error: {err}")
            continue
        rows.append({"id": item.id, "domain": item.domain, "path": item.name, **scores})
        if index in chosen:
            examples.append(
                Example(
                    id=item.id,
                    clips=[
                        Clip("reference", reference, sample_rate),
                        Clip("reconstruction", estimate, sample_rate),
                    ],
                    metrics=scores,
                )
            )
    summary, per_domain = summarize(rows, RECONSTRUCTION_METRICS)
    result = {
        "task": "reconstruct",
        "settings": {"sample_rate": sample_rate, **(settings or {})},
        "metrics": list(RECONSTRUCTION_METRICS),
        "summary": summary,
        "per_domain": per_domain,
        "items": rows,
        "errors": errors,
    }
    return result, examples


def tokenizer_reconstructor(tokenizer) -> Callable[[Item, torch.Tensor], torch.Tensor]:
    """``reconstruct`` callback running an AudioTokenizer's encode → decode."""

    def run(item: Item, wave: torch.Tensor) -> torch.Tensor:
        del item
        return tokenizer.reconstruct([wave], sample_rate=SAMPLE_RATE)[0].detach().cpu().float()

    return run


def decoded_files_reconstructor(
    decoded: dict[str, Item], sample_rate: int = SAMPLE_RATE
) -> Callable[[Item, torch.Tensor], torch.Tensor]:
    """``reconstruct`` callback reading already-decoded files paired by id."""

    def run(item: Item, wave: torch.Tensor) -> torch.Tensor:
        del wave
        other = decoded.get(item.id)
        if other is None:
            raise EvaluationInputError(
                f"{item.name}: no decoded file with id {item.id!r}; name it with the same "
                "relative path (any audio extension)"
            )
        return other.load(sample_rate)

    return run
