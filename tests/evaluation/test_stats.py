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
