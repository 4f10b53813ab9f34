"""Aggregate per-file metrics: mean and 95% confidence interval, overall and per domain."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# The values each metric can take; 95% intervals are clipped to them (a t interval around a
# mean near a bound would otherwise claim e.g. STOI 1.004). None: unbounded on that side.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    # ITU-T P.862.2 wideband mapping of raw PESQ [-0.5, 4.5]: 0.999 + 4 / (1 + e^(-1.3669x + 3.8224))
    "pesq": (1.0, 4.644),
    "stoi": (-1.0, 1.0),  # a mean of correlation coefficients (0…1 in practice)
    "dnsmos_sig": (1.0, 5.0),  # DNSMOS P.835 / P.808 predict 1–5 MOS scales
    "dnsmos_bak": (1.0, 5.0),
    "dnsmos_ovrl": (1.0, 5.0),
    "dnsmos_p808": (1.0, 5.0),
    "speaker_similarity": (-1.0, 1.0),  # cosine similarities
    "clap_score": (-1.0, 1.0),
    "mel_distance": (0.0, None),  # L1 distances, KL divergences, durations, magnitudes
    "stft_distance": (0.0, None),
    "kl_softmax": (0.0, None),
    "kl_sigmoid": (0.0, None),
    "duration_s": (0.0, None),
    "peak": (0.0, None),
    "domain_match": (0.0, 1.0),
}
CHANGE_PREFIX = "change_"


def metric_range(name: str) -> tuple[float | None, float | None]:
    """Range of a metric, also for its baseline (``noisy_pesq``) and its change
    (``change_pesq`` = value − baseline: ± the width of the range)."""
    for prefix in ("noisy_", "reference_"):
        name = name.removeprefix(prefix)
    if name.startswith(CHANGE_PREFIX):
        lo, hi = metric_range(name.removeprefix(CHANGE_PREFIX))
        width = None if lo is None or hi is None else hi - lo
        return (None, None) if width is None else (-width, width)
    return METRIC_RANGES.get(name, (None, None))


def mean_ci95(
    values: Iterable[float], bounds: tuple[float | None, float | None] = (None, None)
) -> dict[str, float | int | None]:
    """Mean and two-sided 95% confidence interval of the mean (Student t, n - 1 dof; for
    n >= 30 within 5% of the normal ``1.96 * std / sqrt(n)`` some toolkits print).

    NaN values (a metric undefined for a file, e.g. PESQ on silence) are left out and counted
    in ``n_missing``. With fewer than two values the interval is None. ``bounds`` (the
    metric's range, see ``metric_range``) clips ``ci95_low`` / ``ci95_high``;
    ``ci95_half_width`` stays the unclipped t half-width.

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
        low, high = mean - half, mean + half
        lo, hi = bounds
        low = low if lo is None else min(max(low, lo), mean)
        high = high if hi is None else max(min(high, hi), mean)
        out.update(std=std, ci95_low=low, ci95_high=high, ci95_half_width=half)
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
    overall = {
        m: mean_ci95((it.get(m, math.nan) for it in items), metric_range(m)) for m in metrics
    }
    per_group: dict[str, dict] = {}
    if group_key is not None:
        groups = sorted({str(it[group_key]) for it in items if it.get(group_key)})
        for group in groups:
            members = [it for it in items if str(it.get(group_key) or "") == group]
            per_group[group] = {
                m: mean_ci95((it.get(m, math.nan) for it in members), metric_range(m))
                for m in metrics
            }
    return overall, per_group


def add_changes(items: Sequence[dict], metrics: Sequence[str], baseline: str) -> list[str]:
    """Give each item ``change_<m>`` = ``<m>`` − ``<baseline><m>`` (e.g. enhanced − noisy), so
    the change is summarised per item, with a paired interval. Returns the change names."""
    names = []
    for m in metrics:
        names.append(CHANGE_PREFIX + m)
        for it in items:
            value, base = it.get(m, math.nan), it.get(baseline + m, math.nan)
            it[CHANGE_PREFIX + m] = float(value) - float(base)  # NaN when either is undefined
    return names
