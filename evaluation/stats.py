"""Aggregate per-file metrics: mean and 95% confidence interval, overall and per domain."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def mean_ci95(values: Iterable[float]) -> dict[str, float | int | None]:
    """Mean and two-sided 95% confidence interval of the mean (Student t, n - 1 dof; for
    n >= 30 within 5% of the normal ``1.96 * std / sqrt(n)`` some toolkits print).

    NaN values (a metric undefined for a file, e.g. PESQ on silence) are left out and counted
    in ``n_missing``. With fewer than two values the interval is None.

    Returns:
        {"mean", "ci95_low", "ci95_high", "ci95_half_width", "std", "n", "n_missing"}
    """
    from scipy.stats import t as student_t

    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    n = int(finite.size)
    out: dict[str, float | int | None] = {
        "mean": None,
        "ci95_low": None,
        "ci95_high": None,
        "ci95_half_width": None,
        "std": None,
        "n": n,
        "n_missing": int(arr.size - n),
    }
    if n == 0:
        return out
    mean = float(finite.mean())
    out["mean"] = mean
    if n >= 2:
        std = float(finite.std(ddof=1))
        half = float(student_t.ppf(0.975, n - 1) * std / math.sqrt(n))
        out.update(std=std, ci95_low=mean - half, ci95_high=mean + half, ci95_half_width=half)
    return out


def summarize(
    items: Sequence[dict], metrics: Sequence[str], group_key: str | None = "domain"
) -> tuple[dict, dict]:
    """Summaries of per-item metric dicts.

    Args:
        items: one dict per file, holding metric values (and ``group_key`` when grouped).
        metrics: metric names to summarise.
        group_key: item field that names its domain; per-domain summaries are made when at
            least one item has a non-empty value there.
    Returns:
        (overall, per_group): ``{metric: mean_ci95(...)}`` and ``{group: {metric: ...}}``.
    """
    overall = {m: mean_ci95(it.get(m, math.nan) for it in items) for m in metrics}
    per_group: dict[str, dict] = {}
    if group_key is not None:
        groups = sorted({str(it[group_key]) for it in items if it.get(group_key)})
        for group in groups:
            members = [it for it in items if str(it.get(group_key) or "") == group]
            per_group[group] = {
                m: mean_ci95(it.get(m, math.nan) for it in members) for m in metrics
            }
    return overall, per_group
