"""Command-line option values checked where they are parsed, and the one device resolver.

Every numeric option of every `sonotok` command uses one of these functions as its argparse
`type=`, so a value that cannot work (`--batch-size -1`, `--cfg nan`, `--seed 1e23`,
`--device cuda` on a CPU-only torch) ends in one usage line and exit status 2 instead of a
traceback or a run that silently does nothing. Each validator raises `OptionError`, which is
both a `ConfigError` (for Python callers) and an `argparse.ArgumentTypeError` (so argparse
prints its message as is).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, NoReturn

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_SAMPLE_RATE",
    "MAX_SECONDS",
    "MIN_SAMPLE_RATE",
    "OptionError",
    "OptionParser",
    "available_devices",
    "device",
    "finite_float",
    "guidance_scale",
    "int_at_least",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "probability",
    "resolve_device",
    "sample_rate",
    "seconds",
    "seed",
]

MIN_SAMPLE_RATE = 1_000  # below any real recording (telephony is 8 kHz)
MAX_SAMPLE_RATE = 384_000  # the highest rate audio interfaces and FLAC writers commonly support
MAX_SECONDS = 86_400.0  # one day: a duration beyond it is a typo, not a request
MAX_SEED = 2**63 - 1  # what torch, numpy and Python generators all accept
MAX_GUIDANCE = 100.0  # classifier-free guidance is useful up to ~15; far beyond only overflows


class OptionError(ConfigError, argparse.ArgumentTypeError):
    """A command option value that cannot work; the message says what to pass instead."""


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (plus where to read more), exit 2.

    Sub-command parsers inherit the class through `add_subparsers`, so setting it on the
    top-level parser covers every command.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _number(text: str | float, kind: type) -> float | int:
    """`text` as an int (`kind=int`, whole numbers only) or a float; OptionError otherwise."""
    try:
        return kind(text)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise OptionError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """A count that must be at least 1 (batch sizes, steps, epochs, workers)."""
    return int_at_least(1)(text)


def non_negative_int(text: str) -> int:
    """A count that may be 0 (clips per domain, examples shown in a report)."""
    return int_at_least(0)(text)


def int_at_least(low: int) -> Callable[[str], int]:
    """A validator for whole numbers >= `low` (e.g. `int_at_least(2)` for k-fold's k)."""

    def check(text: str) -> int:
        value = _number(text, int)
        if value < low:
            raise OptionError(f"{text!r} is too small; choose a whole number >= {low}")
        return value

    check.__name__ = f"int_at_least_{low}"
    return check


def finite_float(text: str) -> float:
    """Any real number, but not nan or ±inf."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise OptionError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, durations)."""
    value = finite_float(text)
    if value <= 0:
        raise OptionError(f"{text!r} must be > 0")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (overlaps; 0 where the help says it switches something off)."""
    value = finite_float(text)
    if value < 0:
        raise OptionError(f"{text!r} must be >= 0")
    return value


def probability(text: str) -> float:
    """A share or mix in [0, 1] (dry/wet strength, validation fraction)."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise OptionError(f"{text!r} is outside [0, 1]")
    return value


def seconds(text: str) -> float:
    """A duration in seconds: > 0 and at most a day."""
    value = positive_float(text)
    if value > MAX_SECONDS:
        raise OptionError(f"{text!r} seconds is more than a day; choose at most {MAX_SECONDS:g}")
    return value


def guidance_scale(text: str) -> float:
    """A classifier-free guidance scale in [0, 100] (1 = no guidance)."""
    value = finite_float(text)
    if not 0.0 <= value <= MAX_GUIDANCE:
        raise OptionError(f"{text!r} is outside [0, {MAX_GUIDANCE:g}]; typical values are 1 to 10")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number in [0, 2**63); `1e3` is accepted as 1000."""
    try:
        exact = Decimal(str(text).strip())
    except InvalidOperation:
        raise OptionError(f"{text!r} is not a whole number") from None
    if not exact.is_finite() or exact != exact.to_integral_value():
        raise OptionError(f"{text!r} is not a whole number")
    value = int(exact)
    if not 0 <= value <= MAX_SEED:
        raise OptionError(f"{text!r} is out of range; choose a seed from 0 to 2**63 - 1")
    return value


def sample_rate(text: str) -> int:
    """An audio sample rate in Hz, within what recordings and audio files really use."""
    value = _number(text, int)
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise OptionError(
            f"{text!r} Hz is not a plausible sample rate; choose one from {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} (e.g. 16000, 44100, 48000)"
        )
    return value


# ---- devices -------------------------------------------------------------------------------
def available_devices() -> list[str]:
    """The device names this machine's torch can use, e.g. ['cpu', 'cuda:0', 'cuda:1']."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def _unavailable(name: str, why: str) -> OptionError:
    return OptionError(
        f"device {name!r}: {why}; available here: auto, {', '.join(available_devices())}"
    )


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` (CUDA when available, else CPU), `cpu`, `cuda`, `cuda:N` or `mps` → a torch.device
    that exists on this machine; ConfigError naming the available ones otherwise."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise _unavailable(name, "Apple MPS is not available in this torch build or machine")
        return torch.device("mps")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise _unavailable(name, "unknown device; choose auto, cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        why = (
            f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build "
            "of torch or use --device cpu"
            if torch.version.cuda is None
            else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)"
        )
        raise _unavailable(name, why)
    if index and int(index) >= torch.cuda.device_count():
        raise _unavailable(name, f"only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device(text)


def device(text: str) -> str:
    """argparse `type=` for --device: fails at parse time when the device does not exist here,
    and keeps the (lower-cased) name so `auto` still means auto to the command. `auto` always
    exists, so parsing it needs no torch import (commands that never run a model stay light)."""
    name = text.strip().lower()
    if name != "auto":
        resolve_device(text)
    return name
