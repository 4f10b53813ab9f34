"""The latent file format: one clip's latents and what is needed to turn them back into audio.

A latent file is a `.safetensors` file holding one float32 tensor `latents` of shape (T, D)
(T frames at the model's frame rate, D = the model's latent width) and string metadata:

    model               the tokenizer that encoded it (as named on the command line)
    features            fused (decodable), semantic or acoustic
    frame_rate          latent frames per second (25.0 for DashengTokenizer)
    latent_sample_rate  the model's audio rate (16000)
    sample_rate         the source file's rate, restored on decoding
    num_samples         the source file's length in samples at `sample_rate`, restored on decoding
    channels            the source file's channel count (informational; decoding gives mono)
    source              the source file's path (informational)

`LatentFile` (like DAC's `DACFile`) is the format: `save`, `load` and `validate`. A latent file
is user input, so nothing in it is trusted:
- `load` refuses anything but one finite 2-D float tensor, and metadata numbers that are not
  whole/finite positive numbers or sample rates outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE.
- `validate(model)` refuses what the model cannot decode — a different latent width, frame
  rate or model rate, or non-fused features — and a `num_samples` that disagrees with the
  frame count by more than FRAME_TOLERANCE frames (an edited or swapped header, which would
  otherwise make decoding pad the audio to any length it names).
- A different *model name* of the same shape only gives a warning (returned, printed once by
  the CLI): the decoder of a fine-tuned model may legitimately decode its base model's latents,
  and the same model can be named in several ways (hub id, folder), so refusing would block
  correct uses; staying silent is what must not happen.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from .errors import AudioInputError
from .io import atomic_output, check_finite

__all__ = [
    "FRAME_TOLERANCE",
    "LATENT_EXTENSIONS",
    "LatentFile",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
]

LATENT_EXTENSIONS = (".safetensors",)  # what `sonotok decode` looks for in folders and globs
TENSOR = "latents"
# The rates audio files are read at (tokenizer.audio.MIN_FILE_RATE / MAX_FILE_RATE): a latent
# file made by `sonotok encode` never records a rate outside them.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
# Frames T may differ from num_samples / sample_rate · frame_rate: T = (1 + N // 160) // 4 at
# 16 kHz lies within one frame of N / 640, plus resampling's rounding.
FRAME_TOLERANCE = 2.0
_INT_FIELDS = ("latent_sample_rate", "sample_rate", "num_samples", "channels")
_WHOLE = re.compile(r"^\s*[+-]?\d+\s*$")


class LatentModel(Protocol):
    """What `validate` needs of a model (every `Tokenizer` has it)."""

    latent_dim: int
    frame_rate: float
    sample_rate: int
    feature_names: tuple[str, ...]  # the first is the decodable kind (without it: "fused")


@dataclass(eq=False)  # a tensor field has no single truth value: compare `metadata()` instead
class LatentFile:
    """One clip's latents (T, D) float32 and their metadata (see the module docstring)."""

    latents: torch.Tensor
    model: str | None = None
    features: str = "fused"
    frame_rate: float | None = None
    latent_sample_rate: int | None = None
    sample_rate: int | None = None
    num_samples: int | None = None
    channels: int | None = None
    source: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # unknown metadata, kept as is
    path: Path | None = None  # where it was loaded from

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "latents"

    # ---- writing ----------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        """The safetensors metadata: every known field that is set, as strings."""
        known = {
            "model": self.model,
            "features": self.features,
            "frame_rate": self.frame_rate,
            "latent_sample_rate": self.latent_sample_rate,
            "sample_rate": self.sample_rate,
            "num_samples": self.num_samples,
            "channels": self.channels,
            "source": self.source,
        }
        return {**self.extra, **{k: str(v) for k, v in known.items() if v is not None}}

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically; NaN/inf latents are refused (ModelOutputError) before writing."""
        from safetensors.torch import save_file

        check_finite(self.latents, "latents", self.source or path)
        tensor = self.latents.detach().float().contiguous().cpu()
        with atomic_output(path) as tmp:
            save_file({TENSOR: tensor}, str(tmp), metadata=self.metadata())

    # ---- reading ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> LatentFile:
        """Read and check a latent file; AudioInputError naming the file if it is not one."""
        path = Path(path)
        tensors, meta = read_tensors(path)
        if TENSOR not in tensors:
            raise AudioInputError(
                f"{path}: no 'latents' tensor (it has {sorted(tensors)}); this file was not "
                "written by `sonotok encode`"
            )
        return cls._from_parts(path, tensors[TENSOR], meta)

    @classmethod
    def _from_parts(cls, path: Path, tensor: torch.Tensor, meta: dict[str, str]) -> LatentFile:
        if tensor.dim() != 2:
            hint = " (a batch of one: save z[0])" if tensor.dim() == 3 and len(tensor) == 1 else ""
            raise AudioInputError(
                f"{path}: 'latents' has shape {tuple(tensor.shape)}; a latent file holds one clip "
                f"as (frames, width){hint}"
            )
        if not tensor.is_floating_point():
            raise AudioInputError(f"{path}: 'latents' holds {tensor.dtype} values, not floats")
        if 0 in tensor.shape:
            raise AudioInputError(f"{path}: 'latents' has shape {tuple(tensor.shape)}; it is empty")
        tensor = tensor.float()
        if not bool(torch.isfinite(tensor).all()):
            raise AudioInputError(
                f"{path}: the latents hold NaN or infinite values; re-encode the source audio"
            )
        values: dict = {k: meta.pop(k, None) for k in ("model", "features", "source")}
        values["features"] = values["features"] or "fused"
        for key in _INT_FIELDS:
            values[key] = _positive_int(meta.pop(key, None), key, path)
        values["frame_rate"] = _positive_float(meta.pop("frame_rate", None), "frame_rate", path)
        check_rates(values, path)
        return cls(tensor, **values, extra=meta, path=path)

    # ---- checking against a model -----------------------------------------------------
    def validate(self, model: LatentModel, model_name: str | None = None) -> str | None:
        """Check that `model` can decode this file into the audio its metadata describes.

        Raises AudioInputError (naming the file and the fix) for what cannot work; returns a
        warning when the file names another model than `model_name` (None: all is well).
        """
        frames, width = self.latents.shape
        made_by = f" (it was made by {self.model})" if self.model else ""
        decodable = getattr(model, "feature_names", ("fused",))[0]
        if self.features != decodable:
            raise AudioInputError(
                f"{self.name}: holds {self.features} features; only {decodable} latents can be "
                "decoded (encode without --features)"
            )
        if width != model.latent_dim:
            raise AudioInputError(
                f"{self.name}: holds {width}-dimensional latents but the model makes "
                f"{model.latent_dim}-dimensional ones; decode with the model that encoded "
                f"it{made_by}"
            )
        if self.frame_rate is not None and not math.isclose(self.frame_rate, model.frame_rate):
            raise AudioInputError(
                f"{self.name}: latents at {self.frame_rate:g} frames/s but the model works at "
                f"{model.frame_rate:g}; decode with the model that encoded it{made_by}"
            )
        if self.latent_sample_rate not in (None, model.sample_rate):
            raise AudioInputError(
                f"{self.name}: encoded at {self.latent_sample_rate} Hz but the model works at "
                f"{model.sample_rate} Hz; decode with the model that encoded it{made_by}"
            )
        return check_length_and_model(self, model, model_name, frames, "latent")


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file; AudioInputError if it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own types for damaged files
        raise AudioInputError(
            f"{path}: not a readable safetensors file ({err}); re-create it with `sonotok encode`"
        ) from None


def check_rates(values: dict, path: Path) -> None:
    """The parsed `sample_rate` / `latent_sample_rate` metadata within the readable rates."""
    for key in ("sample_rate", "latent_sample_rate"):
        rate = values[key]
        if rate is not None and not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioInputError(
                f"{path}: metadata {key}={rate} Hz is outside {MIN_SAMPLE_RATE}–"
                f"{MAX_SAMPLE_RATE} Hz; the metadata is damaged — fix it or re-encode the audio"
            )


def check_length_and_model(file, model, model_name: str | None, frames: int, kind: str):
    """The checks every encoded file (latent or code file) shares: its `num_samples` fits its
    `frames` (AudioInputError), and a warning (returned) when it names another model than
    `model_name`. `kind`: "latent" or "code"."""
    if file.num_samples is not None:
        rate = file.sample_rate or model.sample_rate
        if frames_mismatch(model, file.num_samples, rate, frames):
            raise AudioInputError(
                f"{file.name}: metadata num_samples={file.num_samples} at {rate} Hz "
                f"({file.num_samples / rate:.2f} s) does not match its {frames} {kind} frames "
                f"({frames / model.frame_rate:.2f} s); the metadata is damaged or from another "
                "file — fix it or re-encode the audio"
            )
    if file.model and model_name and not _same_model(file.model, str(model_name)):
        return (
            f"{file.name}: encoded by model {file.model!r} but decoded with {model_name!r}; "
            f"the audio is only right if that decoder was trained on these {kind}s "
            f"(else pass --model {file.model})"
        )
    return None


def frames_mismatch(model, num_samples: int, rate: int, frames: int) -> bool:
    """Whether `frames` is more than FRAME_TOLERANCE away from both duration × frame rate and
    the model's own `num_latent_frames` (where it has one: SemantiCodec pads to whole 0.16 s
    patch columns plus one, up to 9 frames more than the duration)."""
    expected = [num_samples / rate * model.frame_rate]
    count = getattr(model, "num_latent_frames", None)
    if callable(count):
        expected.append(count(max(1, round(num_samples * model.sample_rate / rate))))
    return all(abs(e - frames) > FRAME_TOLERANCE for e in expected)


def _positive_int(text: str | None, key: str, path: Path) -> int | None:
    if text is None:
        return None
    if not _WHOLE.match(text) or int(text) < 1:
        raise AudioInputError(
            f"{path}: metadata {key}={text!r} is not a whole number >= 1; the metadata is "
            "damaged — fix it or re-encode the audio"
        )
    return int(text)


def _positive_float(text: str | None, key: str, path: Path) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise AudioInputError(
            f"{path}: metadata {key}={text!r} is not a positive number; the metadata is damaged"
        )
    return value


def _same_model(a: str, b: str) -> bool:
    """The same name, or two spellings of one local folder."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
    except OSError:
        return False
