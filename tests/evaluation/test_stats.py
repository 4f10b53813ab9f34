"""Mean and 95% interval, overall and per domain."""

import math

import numpy as np
import pytest
from scipy import stats

from sonotok.evaluation import mean_ci95, summarize


def test_interval_is_student_t_interval_of_the_mean():
    values = [3.1, 2.7, 3.9, 3.3, 2.8, 3.6]
    s = mean_ci95(values)
    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert s["mean"] == pytest.approx(np.mean(values))
    assert (s["ci95_low"], s["ci95_high"]) == (pytest.approx(low), pytest.approx(high))
    assert s["n"] == 6 and s["n_missing"] == 0


def test_undefined_values_are_counted_not_averaged():
    s = mean_ci95([1.0, math.nan, 3.0])
    assert s["mean"] == 2.0 and s["n"] == 2 and s["n_missing"] == 1


def test_single_value_has_no_interval():
    s = mean_ci95([4.2])
    assert s["mean"] == 4.2 and s["ci95_low"] is None and s["ci95_half_width"] is None


def test_summaries_per_domain():
    items = [
        {"id": "a", "domain": "speech", "pesq": 4.0},
        {"id": "b", "domain": "speech", "pesq": 3.0},
        {"id": "c", "domain": "music", "pesq": 2.0},
    ]
    overall, per_domain = summarize(items, ["pesq"])
    assert overall["pesq"]["mean"] == 3.0
    assert per_domain["speech"]["pesq"]["mean"] == 3.5 and per_domain["music"]["pesq"]["n"] == 1
    assert summarize([{"id": "x", "pesq": 1.0}], ["pesq"])[1] == {}


def test_interval_is_clipped_to_the_metric_range():
    """STOI 0.998 ± 0.006 used to be reported as [0.992, 1.004]."""
    stoi = [1.0, 0.99, 1.0, 1.0, 0.998]
    overall, _ = summarize([{"stoi": v, "si_sdr": v} for v in stoi], ["stoi", "si_sdr"])
    unclipped = overall["si_sdr"]  # unbounded metric: the plain t interval
    assert unclipped["ci95_high"] > 1.0
    s = overall["stoi"]
    assert s["ci95_high"] == 1.0 and s["ci95_low"] == pytest.approx(unclipped["ci95_low"])
    assert s["ci95_half_width"] == pytest.approx(unclipped["ci95_half_width"])
    for name, values, (lo, hi) in (
        ("pesq", [4.64, 4.5, 4.64], (1.0, 4.644)),
        ("noisy_dnsmos_ovrl", [1.0, 1.3, 1.02], (1.0, 5.0)),
        ("mel_distance", [0.01, 0.3, 0.02], (0.0, None)),
    ):
        s = summarize([{name: v} for v in values], [name])[0][name]
        assert s["ci95_low"] >= lo and (hi is None or s["ci95_high"] <= hi), name
        assert s["ci95_low"] <= s["mean"] <= s["ci95_high"]


def test_changes_are_paired_per_item_with_their_own_range():
    from sonotok.evaluation.stats import add_changes, metric_range

    items = [{"pesq": 2.0 + d, "noisy_pesq": 2.0} for d in (0.4, 0.5, 0.6)]
    assert add_changes(items, ["pesq"], baseline="noisy_") == ["change_pesq"]
    s = summarize(items, ["change_pesq"])[0]["change_pesq"]
    assert s["mean"] == pytest.approx(0.5) and s["ci95_low"] > 0  # paired: the noise cancels
    assert metric_range("change_pesq") == (pytest.approx(-3.644), pytest.approx(3.644))
    assert metric_range("change_si_sdr") == (None, None)
