"""The `Tokenizer` interface every tokenizer family implements, and the one loader.

Heads, extraction, probing, evaluation and the command line use only what is defined here, so a
new family (a continuous tokenizer, a discrete codec, an adapter around another library's codec)
plugs in by subclassing `Tokenizer`, decorating it with `@register_tokenizer("<model_type>")`
and saving `config.json` with that `model_type`: `load_tokenizer(folder)` then builds it, and
every command works on it.

A family implements four things: its facts (`sample_rate`, `frame_rate`, `latent_dim`, and for
a discrete one `codebook_size` / `num_codebooks`; `output_sample_rate` if its decoder writes at
another rate), `encode_waves` (1-D waves at its own rate →
per-clip latents), `decode_latents` (a (B, T, D) batch → audio) and `from_pretrained` /
`save_pretrained`. Input handling (one wave, a padded batch with a mask, a list; resampling;
checks), output packing, `reconstruct` and exact output lengths come from the base class.
A discrete family adds `codes_waves` and `embed_codes`, and, when its decoder needs a per-clip
choice besides the codes (UniCodec's domain), `code_option_names` + `code_options`: code
files record those options and `decode(codes, **options)` takes them back.
"""

from __future__ import annotations

import abc
import inspect
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotok.core.audio import (
    AudioInputError,
    check_sample_rate,
    check_wave,
    resample,
    restore_rate_and_length,
)
from sonotok.core.errors import ConfigError, ModelNotFoundError
from sonotok.core.hub import is_hub_id, resolve

AudioInput = torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]

__all__ = ["AudioInput", "Tokenizer", "load_tokenizer", "register_tokenizer", "tokenizer_types"]

MAX_CHANNELS_LAST = 8  # a 2-D input this narrow and taller than wide is (samples, channels)


def _refuse_channels_last(audio: torch.Tensor, name: str) -> None:
    """Raise AudioInputError for (samples, channels) arrays as `soundfile.read` returns them.

    Read as a batch they would be thousands of clips of ≤ 8 samples; averaging them silently
    would hide the mistake and change `reconstruct`'s output shape, so the caller chooses."""
    if audio.dim() == 2 and audio.shape[1] <= MAX_CHANNELS_LAST < audio.shape[0]:
        n, c = audio.shape
        raise AudioInputError(
            f"{name} has shape ({n}, {c}), which looks like (samples, channels) as "
            "soundfile.read returns it; encode takes mono waves: pass wave.mean(axis=1) for one "
            f"mono clip, or wave.T to encode the {c} channels as {c} clips"
        )


class Tokenizer(nn.Module, abc.ABC):
    """Audio ⇄ frame-rate latents (continuous) or codes + their embeddings (discrete).

    Shapes: `encode` takes one wave (N,) → (T, D); a padded batch (B, N) with an optional
    `attention_mask` (B, N) → (B, T, D), zero past each clip's own T; or a list of (N_i,) → list
    of (T_i, D). `decode` takes (T, D), (B, T, D) or a list and returns audio at
    `output_sample_rate` (T · output_hop_samples; the input rate unless the family writes at
    another rate, as NeuCodec's 16 kHz in / 24 kHz out). Discrete families also take integer
    codes (T, K) / (B, T, K) in `decode`.
    """

    #: `features=` names `encode` accepts; the first is the default (decodable) one.
    feature_names: tuple[str, ...] = ("latents",)

    # ---- facts (each family defines these) --------------------------------------------------
    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Hz of the audio the family reads and writes (inputs at other rates are resampled)."""

    @property
    @abc.abstractmethod
    def frame_rate(self) -> float:
        """Latent frames per second."""

    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """Width D of the continuous latents (for a discrete family: of the code embeddings)."""

    @property
    def output_sample_rate(self) -> int:
        """Hz of the audio `decode` writes (default: `sample_rate`; a family that reads and
        writes at different rates overrides it)."""
        return self.sample_rate

    @property
    def codebook_size(self) -> int | None:
        """Codes per codebook for a discrete family; None for a continuous one."""
        return None

    @property
    def num_codebooks(self) -> int | None:
        return None

    @property
    def codebook_sizes(self) -> tuple[int, ...] | None:
        """Codes per codebook, one per codebook (a family whose codebooks differ, as
        SemantiCodec's semantic and acoustic ones, overrides it); None for a continuous one."""
        if not self.is_discrete:
            return None
        return (self.codebook_size,) * self.num_codebooks

    @property
    def is_discrete(self) -> bool:
        return self.codebook_size is not None

    @property
    def hop_samples(self) -> int:
        """Samples per latent frame at `sample_rate`."""
        return round(self.sample_rate / self.frame_rate)

    @property
    def output_hop_samples(self) -> int:
        """Samples per latent frame in `decode`'s output (at `output_sample_rate`)."""
        return round(self.output_sample_rate / self.frame_rate)

    @property
    def bitrate(self) -> float | None:
        """Bits per second of the codes (discrete); None for continuous latents."""
        if not self.is_discrete:
            return None
        return self.frame_rate * self.num_codebooks * math.log2(self.codebook_size)

    @property
    def latent_values_per_second(self) -> float:
        """Numbers per second of audio in the latents (frame rate × width)."""
        return self.frame_rate * self.latent_dim

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def min_samples(self) -> int:
        """The shortest input (samples at `sample_rate`) the family encodes: one frame."""
        return self.hop_samples

    def num_latent_frames(self, num_samples: int) -> int:
        """T for N samples at `sample_rate` (families with other rounding override this)."""
        return num_samples // self.hop_samples

    def describe(self) -> dict:
        """The facts as a JSON-able dict (for reports, metadata and the comparison table)."""
        sizes = self.codebook_sizes
        return {
            "model_type": getattr(self, "model_type", type(self).__name__),
            "sample_rate": self.sample_rate,
            "output_sample_rate": self.output_sample_rate,
            "frame_rate": self.frame_rate,
            "latent_dim": self.latent_dim,
            "discrete": self.is_discrete,
            "codebook_size": self.codebook_size,
            "num_codebooks": self.num_codebooks,
            "codebook_sizes": None if sizes is None else list(sizes),
            "bitrate": self.bitrate,
            "parameters": sum(p.numel() for p in self.parameters()),
        }

    # ---- what a family implements ---------------------------------------------------------
    @abc.abstractmethod
    def encode_waves(self, waves: list[torch.Tensor], features: str) -> list[torch.Tensor]:
        """1-D float32 waves at `sample_rate` on `device` → [(T_i, D)] latents."""

    @abc.abstractmethod
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, D) latents → (B, T · output_hop_samples) audio at `output_sample_rate`."""

    # ---- what a discrete family adds ------------------------------------------------------
    # `encode` gives every family's continuous latents (for a discrete family: the embeddings
    # of its codes), which is what heads, probes and extraction use; the codes themselves come
    # from `encode_codes`, and `decode` takes either.
    #
    # Per-clip decode options: a family whose decoder needs a per-clip choice besides the codes
    # (UniCodec's domain) lists its names in `code_option_names` and returns the clip's values
    # from `code_options`; `encode_codes(..., return_options=True)` hands them out with the
    # codes, code files record them (`sonotok.core.codes.CodeFile.decode_options`), and
    # `decode(codes, **options)` passes them back to `decode_latents`, so decoding is exact.
    #: names of the per-clip options `code_options` returns (and `decode_latents` takes)
    code_option_names: tuple[str, ...] = ()

    def code_options(self, wave: torch.Tensor, codes: torch.Tensor) -> dict[str, str | int | float]:
        """The decode options of one clip: its 1-D wave at `sample_rate` and its (T, K) codes →
        {name in `code_option_names`: str or finite number}; none by default."""
        return {}

    def codes_waves(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """1-D waves at `sample_rate` → [(T_i, K)] int64 codes (discrete families)."""
        raise ConfigError(f"{type(self).__name__} is a continuous tokenizer: it has no codes")

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, K) int64 codes → (B, T, D) their continuous embeddings (discrete families)."""
        raise ConfigError(f"{type(self).__name__} is a continuous tokenizer: it has no codes")

    # ---- shared input handling ------------------------------------------------------------
    def prepare_audio(
        self, audio: AudioInput, attention_mask: torch.Tensor | None, sample_rate: int
    ) -> tuple[list[torch.Tensor], str, list[int]]:
        """The accepted input forms → (1-D float32 waves at the model's rate on its device, the
        input's form "single" | "batch" | "list", the original lengths)."""
        check_sample_rate(sample_rate, "sample_rate argument", "pass the audio's true rate")
        if isinstance(audio, (torch.Tensor, np.ndarray)):
            audio = torch.as_tensor(audio)
            _refuse_channels_last(audio, "audio")
            if audio.dim() == 1:
                waves, kind = [audio], "single"
            elif audio.dim() == 2:
                kind = "batch"
                if attention_mask is None:
                    waves = list(audio)
                else:
                    mask = torch.as_tensor(attention_mask)
                    if mask.shape != audio.shape:
                        raise AudioInputError(
                            f"attention_mask shape {tuple(mask.shape)} does not match audio "
                            f"{tuple(audio.shape)}"
                        )
                    lengths = mask.to(torch.int64).sum(-1).tolist()
                    waves = [a[:n] for a, n in zip(audio, lengths)]
            else:
                raise AudioInputError(
                    f"audio has shape {tuple(audio.shape)}; pass (N,) or (B, N) mono waves "
                    "(average channels first: wave.mean(0))"
                )
        else:
            waves, kind = [torch.as_tensor(np.asarray(a)) for a in audio], "list"
            if not waves:
                raise AudioInputError("got an empty list of waves; pass at least one")
            for i, w in enumerate(waves):
                _refuse_channels_last(w, f"input {i}")
                if w.dim() != 1:
                    raise AudioInputError(
                        f"input {i}: shape {tuple(w.shape)}; each wave in a list must be 1-D (N,)"
                    )
        lengths = [int(w.shape[-1]) for w in waves]
        if sample_rate != self.sample_rate:
            waves = [
                torch.from_numpy(
                    resample(w.detach().cpu().float().numpy(), sample_rate, self.sample_rate)
                )
                for w in waves
            ]
        device, out = self.device, []
        for i, w in enumerate(waves):
            check_wave(w, f"input {i}", self.min_samples, self.sample_rate)
            out.append(w.detach().to(device=device, dtype=torch.float32))
        return out, kind, lengths

    @staticmethod
    def pack(latents: list[torch.Tensor], kind: str) -> torch.Tensor | list[torch.Tensor]:
        """Per-clip outputs back into the input's form (a padded batch is zero-padded)."""
        if kind == "single":
            return latents[0]
        if kind == "list":
            return latents
        length = max(z.shape[0] for z in latents)
        return torch.stack(
            [torch.nn.functional.pad(z, (0, 0, 0, length - z.shape[0])) for z in latents]
        )

    # ---- the interface --------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self,
        audio: AudioInput,
        attention_mask: torch.Tensor | None = None,
        sample_rate: int | None = None,
        features: str | None = None,
        **options,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Audio at `sample_rate` (default: the model's) → latents (see the class docstring).
        Inputs at other rates are resampled with soxr. A (samples, channels) array as
        `soundfile.read` returns it (2-D, ≤ 8 columns, more rows) raises AudioInputError: pass
        `wave.mean(axis=1)` (one mono clip) or `wave.T`. `options` go to the family's
        `encode_waves` (e.g. memory bounds); `progress=callback(fraction done)` works for every
        family (progress bars on long files)."""
        features = features or self.feature_names[0]
        if features not in self.feature_names:
            raise ValueError(f"features={features!r}; choose one of {list(self.feature_names)}")
        waves, kind, _ = self.prepare_audio(audio, attention_mask, sample_rate or self.sample_rate)
        done = _family_options(self.encode_waves, options)
        latents = self.encode_waves(waves, features, **options)
        done()
        return self.pack(latents, kind)

    @torch.no_grad()
    def encode_codes(
        self,
        audio: AudioInput,
        attention_mask: torch.Tensor | None = None,
        sample_rate: int | None = None,
        return_options: bool = False,
    ) -> torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor | list[torch.Tensor], dict | list]:
        """Audio → integer codes of a discrete family: (N,) → (T, K); (B, N) → (B, T, K) (zero
        past each clip's own T); list → list. `decode` turns them back into audio. With
        `return_options`, (codes, options): each clip's `code_options` dict (one dict for one
        wave, else a list), for `decode(codes, **options)`."""
        if not self.is_discrete:
            raise ConfigError(f"{type(self).__name__} is a continuous tokenizer: it has no codes")
        waves, kind, _ = self.prepare_audio(audio, attention_mask, sample_rate or self.sample_rate)
        codes = self.codes_waves(waves)
        if not return_options:
            return self.pack(codes, kind)
        options = [self.code_options(w, c) for w, c in zip(waves, codes)]
        return self.pack(codes, kind), options[0] if kind == "single" else options

    @torch.no_grad()
    def decode(
        self, latents: torch.Tensor | Sequence[torch.Tensor], **options
    ) -> torch.Tensor | list[torch.Tensor]:
        """Latents (or codes) → audio at `output_sample_rate`: (T, D) → (T·hop,); (B, T, D) →
        (B, T·hop) with hop = `output_hop_samples`; a list → a list. Integer input is a discrete family's codes (T, K) / (B, T, K), decoded
        through `embed_codes`. `options` go to the family's `decode_latents`."""
        if isinstance(latents, (list, tuple)):
            return [self.decode(z, **options) for z in latents]
        latents = torch.as_tensor(latents)
        width = self.num_codebooks if not latents.is_floating_point() else self.latent_dim
        if latents.dim() not in (2, 3) or latents.shape[-1] != width:
            raise ValueError(
                f"latents have shape {tuple(latents.shape)}; expected (T, {width}) or (B, T, {width})"
            )
        if latents.shape[-2] == 0:
            raise ValueError("latents have 0 frames; nothing to decode")
        if latents.is_floating_point() and not torch.isfinite(latents).all():
            raise ValueError("latents contain NaN or infinite values")
        single = latents.dim() == 2
        batch = latents[None] if single else latents
        if not batch.is_floating_point():  # codes: through their embeddings
            batch = self.embed_codes(batch.long().to(self.device))
        done = _family_options(self.decode_latents, options)
        audio = self.decode_latents(batch, **options)
        done()
        return audio[0] if single else audio

    @torch.no_grad()
    def reconstruct(
        self,
        audio: AudioInput,
        attention_mask: torch.Tensor | None = None,
        sample_rate: int | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode then decode, returning audio at the input's rate and length."""
        rate = sample_rate or self.sample_rate
        waves, kind, lengths = self.prepare_audio(audio, attention_mask, rate)
        latents = self.encode_waves(waves, self.feature_names[0])
        outputs = [
            restore_rate_and_length(self.decode(z), self.output_sample_rate, rate, n)
            for z, n in zip(latents, lengths)
        ]
        if kind != "batch":
            return outputs[0] if kind == "single" else outputs
        width = torch.as_tensor(audio).shape[-1]
        return torch.stack([torch.nn.functional.pad(y, (0, width - y.shape[-1])) for y in outputs])

    def set_compute_dtype(self, dtype) -> Tokenizer:
        """Run in lower precision where the family supports it (default: fp32 only)."""
        if dtype not in (None, "fp32", torch.float32):
            raise ConfigError(f"{type(self).__name__} runs in fp32 only; drop --dtype {dtype}")
        return self

    # ---- checkpoints ----------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs) -> Tokenizer:
        """Load from a folder written by `save_pretrained` or a hub id (`device`, `compute_dtype`
        and the hub options `revision`, `cache_dir`, `token`, `local_files_only` by keyword)."""

    @abc.abstractmethod
    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write config.json (with this family's `model_type`) and the weights to `folder`."""

    @classmethod
    def claims(cls, name: str) -> bool:
        """Whether `name` is one of this family's names that has no sonotok config.json: an
        official release in its own layout (e.g. `zhai-lw/SQCodec:6kbps`) or a short alias.
        `load_tokenizer` asks each family before falling back to the DashengTokenizer."""
        return False


# Options every family may be given; one that does not support a hint runs without it.
MEMORY_HINTS = ("chunks_per_pass", "chunk_frames")


def _family_options(method: Callable, options: dict) -> Callable[[], None]:
    """Fit the interface's optional hints to what `method` (a family's `encode_waves` or
    `decode_latents`) takes: memory bounds it lacks are dropped (it works in one pass), and
    `progress=callback(fraction)` is passed on where the family reports progress itself, else
    called once with 1.0 by the returned function when the step is done. Other options pass
    through unchanged (an unknown one is the family's TypeError)."""
    accepted = inspect.signature(method).parameters
    for hint in MEMORY_HINTS:
        if hint in options and hint not in accepted:
            del options[hint]
    progress = options.pop("progress", None)
    if progress is None:
        return lambda: None
    if "progress" in accepted:
        options["progress"] = progress
        return lambda: None
    return lambda: progress(1.0)


# ---- the registry and the one loader ------------------------------------------------------
_FAMILIES: dict[str, type[Tokenizer]] = {}


def register_tokenizer(*model_types: str) -> Callable[[type[Tokenizer]], type[Tokenizer]]:
    """Class decorator: `load_tokenizer` builds this class for config.json `model_type`s."""

    def decorate(cls: type[Tokenizer]) -> type[Tokenizer]:
        for name in model_types:
            _FAMILIES[name] = cls
        cls.model_type = model_types[0]
        return cls

    return decorate


def tokenizer_types() -> dict[str, type[Tokenizer]]:
    """The registered families, by model_type."""
    _import_builtin_families()
    return dict(_FAMILIES)


def _import_builtin_families() -> None:
    # the DashengTokenizer family, and the adapters around transformers' codecs and diffusers'
    # VAE (they import those libraries only when a model is built)
    from . import adapters, model, semanticodec, sqcodec, unicodec  # noqa: F401


_HUB_OPTIONS = ("revision", "cache_dir", "token", "local_files_only")


def _model_type(name_or_path: str | os.PathLike, hub_options: dict) -> str | None:
    """config.json's model_type: read from a local folder, or fetched alone for a hub id."""
    config = Path(name_or_path).expanduser() / "config.json"
    if not config.is_file() and is_hub_id(str(name_or_path)):
        try:
            folder = resolve(name_or_path, allow_patterns=["config.json"], **hub_options)
        except ModelNotFoundError:
            return None  # the family's loader repeats the download and reports it
        config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None  # the family's own loader reports it with the file named
    if not isinstance(data, dict):
        return None
    return data.get("model_type") or data.get("_class_name")  # diffusers names the class


def load_tokenizer(name_or_path: str | os.PathLike, **kwargs) -> Tokenizer:
    """Any registered tokenizer from a folder or hub id, by its config.json `model_type`; a
    name without one goes to the family that `claims` it (official releases in their own
    layout, aliases), else loads as the DashengTokenizer family."""
    families = tokenizer_types()
    hub_options = {k: kwargs[k] for k in _HUB_OPTIONS if kwargs.get(k) is not None}
    if not (Path(name_or_path).expanduser() / "config.json").is_file():
        for family in families.values():
            if family.claims(str(name_or_path)):
                return family.from_pretrained(name_or_path, **kwargs)
    model_type = _model_type(name_or_path, hub_options)
    if model_type is None:
        from .model import AudioTokenizer

        return AudioTokenizer.from_pretrained(name_or_path, **kwargs)
    if model_type not in families:
        raise ModelNotFoundError(
            f"{name_or_path}: model_type {model_type!r} is not a tokenizer sonotok knows "
            f"(known: {sorted(families)}); import the package that registers it first"
        )
    return families[model_type].from_pretrained(name_or_path, **kwargs)
