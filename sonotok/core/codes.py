"""The code file format: one clip's integer codes (discrete tokenizers) and what decodes them.

The sibling of the latent file (`latents.py`): a `.safetensors` file holding one integer
tensor `codes` of shape (T, K) — T frames, K codebooks — stored as the smallest integer type
that holds every code (int16 for codebooks of up to 32768 codes, else int32), and string
metadata:

    model               the tokenizer that encoded it (as named on the command line)
    model_type          its family (`config.json` model_type): codes of another family mean nothing
    codebook_size       codes per codebook (the largest, where they differ); every code lies in
                        [0, codebook_size)
    codebook_sizes      each codebook's own size, comma-separated ("16384,8192" for a
                        SemantiCodec's semantic and acoustic tokens); column k's codes lie in
                        [0, size k). Older files lack it: every column then has codebook_size
    num_codebooks       K
    frame_rate          code frames per second
    tokens_per_second   frame_rate · K (informational, checked on load)
    bitrate             bits per second of the codes (the family's; frame_rate · K ·
                        log2(codebook_size) for equal codebooks)
    latent_sample_rate  the model's audio rate
    sample_rate         the source file's rate, restored on decoding
    num_samples         the source file's length in samples at `sample_rate`
    channels            the source file's channel count (informational; decoding gives mono)
    source              the source file's path (informational)
    decode_options      JSON object of per-clip choices the decoder needs besides the codes
                        (the family's `code_options`, e.g. UniCodec's domain), name → str|number

A code file is user input, so `load` trusts nothing: one 2-D integer tensor, every code within
its own codebook's [0, size), whole/finite positive numbers, and `decode_options` a flat JSON object of
strings and finite numbers. `validate(model)` refuses what the model cannot decode exactly
(another family, codebook size or count, frame rate, audio rate or bitrate; decode options the
model does not take; a `num_samples` that disagrees with the frame count). As for latent
files, a different *model name* of the same shape only gives a warning.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from .errors import AudioInputError
from .io import atomic_output
from .latents import (
    LatentFile,
    _positive_float,
    _positive_int,
    check_length_and_model,
    check_rates,
    read_tensors,
)

__all__ = ["CODES_TENSOR", "CodeFile", "code_dtype", "load_encoded"]

CODES_TENSOR = "codes"
_INT_FIELDS = (
    "codebook_size",
    "num_codebooks",
    "latent_sample_rate",
    "sample_rate",
    "num_samples",
    "channels",
)
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
MAX_CODEBOOK_SIZE = 2**31  # int32 holds codes below it


class CodeModel(Protocol):
    """What `validate` needs of a model (every discrete `Tokenizer` has it)."""

    codebook_size: int | None
    num_codebooks: int | None
    frame_rate: float
    sample_rate: int
    bitrate: float | None
    code_option_names: tuple[str, ...]


def code_dtype(codebook_size: int) -> torch.dtype:
    """The smallest signed integer type holding codes 0..codebook_size-1 (int16 or int32)."""
    if not 1 <= codebook_size <= MAX_CODEBOOK_SIZE:
        raise ValueError(f"codebook_size={codebook_size}; expected 1..{MAX_CODEBOOK_SIZE}")
    return torch.int16 if codebook_size <= 2**15 else torch.int32


@dataclass(eq=False)  # a tensor field has no single truth value: compare `metadata()` instead
class CodeFile:
    """One clip's codes (T, K) and their metadata (see the module docstring)."""

    codes: torch.Tensor
    codebook_size: int
    model: str | None = None
    model_type: str | None = None
    num_codebooks: int | None = None
    frame_rate: float | None = None
    bitrate: float | None = None
    latent_sample_rate: int | None = None
    sample_rate: int | None = None
    num_samples: int | None = None
    channels: int | None = None
    source: str | None = None
    decode_options: dict[str, str | int | float] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # unknown metadata, kept as is
    path: Path | None = None  # where it was loaded from
    #: each codebook's size (None: every one has `codebook_size`, as in older files)
    codebook_sizes: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "codes"

    @property
    def sizes(self) -> tuple[int, ...]:
        """Each column's codebook size (`codebook_sizes`, else `codebook_size` for all)."""
        if self.codebook_sizes is not None:
            return tuple(self.codebook_sizes)
        return (self.codebook_size,) * int(self.codes.shape[-1])

    @property
    def tokens_per_second(self) -> float | None:
        """Codes per second of audio, all codebooks counted: frame_rate · K."""
        if self.frame_rate is None:
            return None
        return self.frame_rate * int(self.codes.shape[-1])

    # ---- writing ----------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        """The safetensors metadata: every known field that is set, as strings."""
        known = {
            "model": self.model,
            "model_type": self.model_type,
            "codebook_size": self.codebook_size,
            "codebook_sizes": ",".join(str(s) for s in self.sizes),
            "num_codebooks": self.num_codebooks or int(self.codes.shape[-1]),
            "frame_rate": self.frame_rate,
            "tokens_per_second": self.tokens_per_second,
            "bitrate": self.bitrate,
            "latent_sample_rate": self.latent_sample_rate,
            "sample_rate": self.sample_rate,
            "num_samples": self.num_samples,
            "channels": self.channels,
            "source": self.source,
        }
        meta = {**self.extra, **{k: str(v) for k, v in known.items() if v is not None}}
        meta["decode_options"] = json.dumps(self.decode_options, sort_keys=True)
        return meta

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically; codes that are not (T, K) integers in [0, codebook_size) or
        options that `load` would refuse raise ValueError before anything is written."""
        from safetensors.torch import save_file

        codes = self.codes
        if codes.dim() != 2 or codes.is_floating_point() or codes.dtype == torch.bool:
            raise ValueError(
                f"codes must be a (T, K) integer tensor, got {codes.dtype} {tuple(codes.shape)}"
            )
        where = self.source or path
        if self.codebook_sizes is not None:
            _check_sizes(self.codebook_sizes, self.codebook_size, codes.shape[-1], where)
        _check_range(codes, self.sizes, where)
        _check_options(self.decode_options, where)
        tensor = codes.detach().to(code_dtype(self.codebook_size)).contiguous().cpu()
        with atomic_output(path) as tmp:
            save_file({CODES_TENSOR: tensor}, str(tmp), metadata=self.metadata())

    # ---- reading ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> CodeFile:
        """Read and check a code file; AudioInputError naming the file if it is not one."""
        path = Path(path)
        tensors, meta = read_tensors(path)
        if CODES_TENSOR not in tensors:
            raise AudioInputError(
                f"{path}: no 'codes' tensor (it has {sorted(tensors)}); this file was not "
                "written by `sonotok encode` with a discrete tokenizer"
            )
        return cls._from_parts(path, tensors[CODES_TENSOR], meta)

    @classmethod
    def _from_parts(cls, path: Path, tensor: torch.Tensor, meta: dict[str, str]) -> CodeFile:
        if tensor.dtype not in _INTEGER_DTYPES:
            raise AudioInputError(
                f"{path}: 'codes' holds {tensor.dtype} values, not integer codes; re-encode the "
                "audio with `sonotok encode`"
            )
        if tensor.dim() != 2 or 0 in tensor.shape:
            raise AudioInputError(
                f"{path}: 'codes' has shape {tuple(tensor.shape)}; a code file holds one clip as "
                "(frames, codebooks), non-empty"
            )
        values: dict = {k: meta.pop(k, None) for k in ("model", "model_type", "source")}
        for key in _INT_FIELDS:
            values[key] = _positive_int(meta.pop(key, None), key, path)
        for key in ("frame_rate", "bitrate"):
            values[key] = _positive_float(meta.pop(key, None), key, path)
        check_rates(values, path)
        size = values["codebook_size"]
        if size is None or size > MAX_CODEBOOK_SIZE:
            raise AudioInputError(
                f"{path}: metadata codebook_size={size}; a code file records its codebook size "
                f"(1..{MAX_CODEBOOK_SIZE}) — re-encode the audio with `sonotok encode`"
            )
        if values["num_codebooks"] not in (None, tensor.shape[1]):
            raise AudioInputError(
                f"{path}: metadata num_codebooks={values['num_codebooks']} but 'codes' has "
                f"{tensor.shape[1]} columns; the file is damaged — re-encode the audio"
            )
        sizes = _parse_sizes(meta.pop("codebook_sizes", None), path)
        if sizes is not None:
            _check_sizes(sizes, size, tensor.shape[1], path, AudioInputError)
        _check_range(tensor, sizes or (size,) * tensor.shape[1], path, AudioInputError)
        rate = _positive_float(meta.pop("tokens_per_second", None), "tokens_per_second", path)
        if (
            rate
            and values["frame_rate"]
            and not math.isclose(rate, values["frame_rate"] * tensor.shape[1])
        ):
            raise AudioInputError(
                f"{path}: metadata tokens_per_second={rate:g} is not frame_rate × codebooks "
                f"({values['frame_rate']:g} × {tensor.shape[1]}); the metadata is damaged — "
                "re-encode the audio"
            )
        values["codebook_sizes"] = sizes
        values["decode_options"] = _parse_options(meta.pop("decode_options", None), path)
        return cls(tensor.long(), **values, extra=meta, path=path)

    # ---- checking against a model -----------------------------------------------------
    def validate(self, model: CodeModel, model_name: str | None = None) -> str | None:
        """Check that `model` decodes these codes into the audio the metadata describes.

        Raises AudioInputError (naming the file and the fix) for what cannot work; returns a
        warning when the file names another model than `model_name` (None: all is well).
        """
        frames, width = self.codes.shape
        made_by = f" (it was made by {self.model})" if self.model else ""
        fix = f"decode with the model that encoded it{made_by}"
        if getattr(model, "codebook_size", None) is None:
            raise AudioInputError(
                f"{self.name}: holds integer codes but the model is a continuous tokenizer; {fix}"
            )
        own_type = getattr(model, "model_type", None)
        if self.model_type and own_type and self.model_type != own_type:
            raise AudioInputError(
                f"{self.name}: holds codes of a {self.model_type!r} model but the model is "
                f"{own_type!r}; {fix}"
            )
        checks = (
            ("codebook_size", self.codebook_size, model.codebook_size, "codes per codebook"),
            ("num_codebooks", width, model.num_codebooks, "codebooks"),
            ("latent_sample_rate", self.latent_sample_rate, model.sample_rate, "Hz audio"),
        )
        for _, have, want, unit in checks:
            if have is not None and have != want:
                raise AudioInputError(
                    f"{self.name}: holds codes with {have} {unit} but the model uses {want}; {fix}"
                )
        own_sizes = getattr(model, "codebook_sizes", None)
        if self.codebook_sizes is not None and own_sizes is not None:
            if tuple(self.codebook_sizes) != tuple(own_sizes):
                raise AudioInputError(
                    f"{self.name}: holds codes of codebooks sized {list(self.codebook_sizes)} but "
                    f"the model's are {list(own_sizes)}; {fix}"
                )
        for key, unit in (("frame_rate", "frames/s"), ("bitrate", "bits/s")):
            have, want = getattr(self, key), getattr(model, key)
            if have is not None and want is not None and not math.isclose(have, want):
                raise AudioInputError(
                    f"{self.name}: codes at {have:g} {unit} but the model works at {want:g}; {fix}"
                )
        taken = tuple(getattr(model, "code_option_names", ()))
        unknown = sorted(set(self.decode_options) - set(taken))
        if unknown:
            raise AudioInputError(
                f"{self.name}: decode_options {unknown} are not options of this model (it takes "
                f"{list(taken) or 'none'}); {fix}"
            )
        return check_length_and_model(self, model, model_name, frames, "code")


def load_encoded(path: str | os.PathLike) -> LatentFile | CodeFile:
    """A latent file or a code file, told apart by its tensor (`latents` or `codes`), never by
    its name; AudioInputError naming the file if it is neither."""
    path = Path(path)
    tensors, meta = read_tensors(path)
    if CODES_TENSOR in tensors:
        return CodeFile._from_parts(path, tensors[CODES_TENSOR], meta)
    if "latents" in tensors:
        return LatentFile._from_parts(path, tensors["latents"], meta)
    raise AudioInputError(
        f"{path}: neither a 'latents' nor a 'codes' tensor (it has {sorted(tensors)}); this file "
        "was not written by `sonotok encode`"
    )


def _check_range(
    codes: torch.Tensor, sizes: tuple[int, ...], where, error: type = ValueError
) -> None:
    """Every column k of (T, K) codes within [0, sizes[k])."""
    for k, size in enumerate(sizes):
        column = codes[:, k]
        low, high = int(column.min()), int(column.max())
        if low < 0 or high >= size:
            bad = low if low < 0 else high
            raise error(
                f"{where}: holds code {bad}, outside [0, {size}) of codebook {k}; the codes are "
                "damaged or from another model — re-encode the audio"
            )


def _check_sizes(
    sizes: tuple[int, ...], size: int, width: int, where, error: type = ValueError
) -> None:
    """One size per column, none above `codebook_size` (which sets the storage type)."""
    if len(sizes) != width or not all(1 <= s <= size for s in sizes):
        raise error(
            f"{where}: codebook_sizes {list(sizes)} do not fit {width} codebooks of at most "
            f"codebook_size={size}; the metadata is damaged — re-encode the audio"
        )


def _parse_sizes(text: str | None, path: Path) -> tuple[int, ...] | None:
    """'16384,8192' → (16384, 8192); None for older files without the key."""
    if text is None:
        return None
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise AudioInputError(
            f"{path}: metadata codebook_sizes={text[:60]!r} is not comma-separated integers; "
            "the metadata is damaged — re-encode the audio"
        ) from None
    return sizes


def _check_options(options, where, error: type = ValueError) -> None:
    """A flat dict of str → str | finite number (no bools, nulls, lists or objects)."""
    if not isinstance(options, dict):
        raise error(f"{where}: decode_options is {type(options).__name__}, not a JSON object")
    for key, value in options.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not isinstance(key, str) or not (
            isinstance(value, str) or (number and math.isfinite(value))
        ):
            raise error(
                f"{where}: decode_options {key!r}: {value!r} is not a string or finite number; "
                "the metadata is damaged — re-encode the audio"
            )


def _parse_options(text: str | None, path: Path) -> dict[str, str | int | float]:
    if text is None:
        return {}
    try:
        options = json.loads(text)
    except ValueError:
        raise AudioInputError(
            f"{path}: metadata decode_options is not JSON ({text[:60]!r}); the metadata is "
            "damaged — re-encode the audio"
        ) from None
    _check_options(options, path, AudioInputError)
    return options
