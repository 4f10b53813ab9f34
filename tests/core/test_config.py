"""The one typed-config checker: config dataclasses from JSON/YAML data, numeric ranges."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from sonotok.core.config import (
    check_numbers,
    dataclass_from_dict,
    read_json_object,
    require_finite,
    require_positive,
    require_range,
)
from sonotok.core.errors import ConfigError, SonotokError


@dataclass
class Inner:
    depth: int = 2
    ratio: float = 4.0


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    kind: Literal["a", "b"] = "a"
    window: int | None = None
    betas: tuple[float, float] = (0.9, 0.99)
    names: list[str] = field(default_factory=list)


def test_builds_nested_configs_and_widens_ints_to_floats():
    config = dataclass_from_dict(
        Outer, {"inner": {"depth": 6, "ratio": 2}, "window": 3, "betas": [0.5, 0.6]}, "m.json"
    )
    assert config == Outer(Inner(6, 2.0), "a", 3, (0.5, 0.6), [])
    assert isinstance(config.inner.ratio, float) and isinstance(config.betas, tuple)


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2, 3], "m.json: expected a JSON object of Outer settings, got list [1, 2, 3]"),
        (None, "m.json: expected a JSON object of Outer settings, got NoneType None"),
        ({"colour": 1}, "m.json: unknown config key colour; valid keys: inner, kind"),
        ({"inner": {"depth": "six"}}, "m.json: inner.depth: expected an integer, got str 'six'"),
        ({"inner": {"width": 3}}, "m.json: unknown config key inner.width"),
        ({"inner": [1]}, "m.json: inner: expected a mapping of Inner fields, got list [1]"),
        ({"inner": {"ratio": float("nan")}}, "inner.ratio: expected a finite number, got nan"),
        ({"inner": {"ratio": "inf"}}, "inner.ratio: expected a finite number, got inf"),
        ({"inner": {"depth": True}}, "inner.depth: expected an integer, got bool True"),
        ({"kind": "c"}, "m.json: kind: 'c' is not one of ['a', 'b']"),
        ({"betas": [0.9]}, "betas: expected 2 items (tuple[float, float]), got 1"),
        ({"names": ["a", 2]}, "names[1]: expected a string, got int 2"),
    ],
)
def test_bad_data_names_the_file_and_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        dataclass_from_dict(Outer, data, "m.json")
    assert message in str(err.value)
    assert isinstance(err.value, SonotokError) and isinstance(err.value, ValueError)


def test_read_json_object_refuses_non_objects_and_bad_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"depth": 2}))
    assert read_json_object(path) == {"depth": 2}
    for text, message in (("[1, 2, 3]", "expected a JSON object"), ("null", "got NoneType"),
                          ("{oops", "not valid JSON"), ("", "not valid JSON")):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as err:
            read_json_object(path)
        assert str(path) in str(err.value)


def test_numeric_helpers_refuse_nan_inf_and_out_of_range_values():
    assert require_finite(0.5, "x") == 0.5 and require_positive(3, "n") == 3
    for value in (float("nan"), float("inf"), "1"):
        with pytest.raises(ConfigError, match="optim.lr must be a finite number"):
            require_finite(value, "optim.lr")
    with pytest.raises(ConfigError, match=r"optim.lr must be > 0, got -1.0"):
        require_positive(-1.0, "optim.lr")
    with pytest.raises(ConfigError, match=r"train.batch_size must be >= 1, got 0"):
        require_positive(0, "train.batch_size")
    with pytest.raises(ConfigError, match=r"p must be in \[0, 1\), got 1"):
        require_range(1, "p", 0, 1, open_high=True)
    assert require_range(0, "p", 0, 1) == 0


def test_check_numbers_checks_list_items_and_skips_none():
    @dataclass
    class Optim:
        lr: float = 1e-3
        betas: tuple[float, float] = (0.9, 0.999)
        ema: float | None = None
        warmup: int = 0

    check_numbers(Optim(), "optim", positive=("lr", "ema"), below_one=("betas",))
    with pytest.raises(ConfigError, match=r"optim.betas\[1\] must be in \[0, 1\), got 1.5"):
        check_numbers(Optim(betas=(0.9, 1.5)), "optim", below_one=("betas",))
    with pytest.raises(ConfigError, match="optim.warmup must be >= 0, got -1"):
        check_numbers(Optim(warmup=-1), "optim", non_negative=("warmup",))
