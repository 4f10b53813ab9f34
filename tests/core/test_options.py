"""Option validators and the device resolver: bad values become one clear OptionError."""

from __future__ import annotations

import argparse

import pytest
import torch

from sonotok.core import options
from sonotok.core.errors import ConfigError
from sonotok.core.options import OptionError, resolve_device


@pytest.mark.parametrize(
    ("check", "text", "expected"),
    [
        (options.positive_int, "8", 8),
        (options.non_negative_int, "0", 0),
        (options.int_at_least(3), "3", 3),
        (options.positive_float, "1e-4", 1e-4),
        (options.non_negative_float, "0", 0.0),
        (options.finite_float, "-2.5", -2.5),
        (options.probability, "1", 1.0),
        (options.probability, "0", 0.0),
        (options.seconds, "0.5", 0.5),
        (options.guidance_scale, "0", 0.0),
        (options.guidance_scale, "7.5", 7.5),
        (options.seed, "0", 0),
        (options.seed, "1e3", 1000),
        (options.seed, str(2**63 - 1), 2**63 - 1),
        (options.seed, "12.0", 12),
        (options.sample_rate, "44100", 44100),
    ],
)
def test_valid_values_are_parsed(check, text, expected):
    value = check(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("check", "text", "says"),
    [
        (options.positive_int, "-1", ">= 1"),
        (options.positive_int, "0", ">= 1"),
        (options.positive_int, "1.5", "not a whole number"),
        (options.positive_int, "eight", "not a whole number"),
        (options.non_negative_int, "-5", ">= 0"),
        (options.int_at_least(3), "2", ">= 3"),
        (options.positive_float, "0", "> 0"),
        (options.positive_float, "nan", "not a finite number"),
        (options.positive_float, "-1e-9", "> 0"),
        (options.non_negative_float, "-1", ">= 0"),
        (options.non_negative_float, "inf", "not a finite number"),
        (options.finite_float, "-inf", "not a finite number"),
        (options.finite_float, "x", "not a number"),
        (options.probability, "1.01", "outside [0, 1]"),
        (options.probability, "nan", "not a finite number"),
        (options.seconds, "0", "> 0"),
        (options.seconds, "1e30", "more than a day"),
        (options.guidance_scale, "nan", "not a finite number"),
        (options.guidance_scale, "1e30", "outside [0, 100]"),
        (options.guidance_scale, "-1", "outside [0, 100]"),
        (options.seed, "1e23", "out of range"),
        (options.seed, str(2**63), "out of range"),
        (options.seed, "-1", "out of range"),
        (options.seed, "1.5", "not a whole number"),
        (options.seed, "nan", "not a whole number"),
        (options.seed, "inf", "not a whole number"),
        (options.seed, "seven", "not a whole number"),
        (options.sample_rate, "0", "not a plausible sample rate"),
        (options.sample_rate, "1", "not a plausible sample rate"),
        (options.sample_rate, "10000000", "not a plausible sample rate"),
        (options.sample_rate, "16000.5", "not a whole number"),
    ],
)
def test_bad_values_raise_one_option_error(check, text, says):
    with pytest.raises(OptionError) as info:
        check(text)
    message = str(info.value)
    assert says in message and repr(text) in message and "\n" not in message


def test_option_error_is_a_config_error_and_an_argparse_type_error():
    err = OptionError("x")
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)
    assert isinstance(err, argparse.ArgumentTypeError)


def test_parser_prints_the_validator_message_on_one_line(capsys):
    parser = options.OptionParser(prog="tool")
    parser.add_argument("--batch-size", type=options.positive_int, default=8)
    parser.add_argument("--verbose-option-with-a-long-name", action="store_true")
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--batch-size", "-1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "tool: error: argument --batch-size: '-1' is too small; choose a whole number >= 1 "
        "(see: tool --help)\n"
    )


# ---- devices -------------------------------------------------------------------------------
def _cpu_only(monkeypatch, cuda_build: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.4" if cuda_build else None)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def _two_gpus(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_and_cpu_on_a_cpu_only_machine(monkeypatch):
    _cpu_only(monkeypatch)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert options.available_devices() == ["cpu"]


def test_cuda_on_a_cpu_build_says_what_is_available(monkeypatch):
    _cpu_only(monkeypatch)
    with pytest.raises(ConfigError) as info:
        resolve_device("cuda")
    message = str(info.value)
    assert "no CUDA support" in message and "--device cpu" in message
    assert message.endswith("available here: auto, cpu")


def test_cuda_build_without_a_visible_gpu(monkeypatch):
    _cpu_only(monkeypatch, cuda_build=True)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        resolve_device("cuda:0")


def test_unknown_device_names_the_choices(monkeypatch):
    _cpu_only(monkeypatch)
    for name in ("bogus", "cuda:x", "gpu", "cuda:-1", ""):
        if not name:
            assert resolve_device(name) == torch.device("cpu")  # empty = auto
            continue
        with pytest.raises(ConfigError, match="choose auto, cpu, cuda, cuda:N or mps"):
            resolve_device(name)


def test_cuda_devices_when_gpus_are_visible(monkeypatch):
    _two_gpus(monkeypatch)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError) as info:
        resolve_device("cuda:2")
    assert "only 2 CUDA device(s)" in str(info.value)
    assert "available here: auto, cpu, cuda:0, cuda:1" in str(info.value)


def test_mps_only_where_available(monkeypatch):
    _cpu_only(monkeypatch)
    with pytest.raises(ConfigError, match="MPS is not available"):
        resolve_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")
    assert options.available_devices() == ["cpu", "mps"]


def test_device_option_type_keeps_the_name_and_fails_early(monkeypatch):
    _cpu_only(monkeypatch)
    assert options.device("AUTO") == "auto" and options.device("cpu") == "cpu"
    with pytest.raises(argparse.ArgumentTypeError, match="no CUDA support"):
        options.device("cuda")
