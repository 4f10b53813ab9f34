"""`TextToAudioPipeline`: the one text-to-audio pipeline type (glue, no math).

Every implementation turns prompts into tokenizer latents (`generate_latents`) and shares the
rest here: decoding to waveforms (`__call__`), inpainting and continuation of a clip in latent
space, loading any pipeline folder or hub id by its type (`from_pretrained`, through
`sonotok.generation.factory`) and `push_to_hub`. The implementations:
    DiTPipeline              sonotok's DiT (`sonotok train generation`), generation/dit_pipeline.py
    DashengAudioGenPipeline  the official mispeech/Dasheng-AudioGen, generation/audiogen/
The tokenizer is used through the `Tokenizer` interface only (encode, decode, rates, width).
"""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from sonotok.core.hub import PushToHubMixin

from .errors import GenerationError, typed_config
from .factory import SONOTOK_PIPELINE, load_pipeline, pipeline_class
from .splice import DEFAULT_CROSSFADE, splice
from .text import DEFAULT_TEXT_ENCODER

if TYPE_CHECKING:
    from sonotok.tokenizer.interface import Tokenizer


@dataclass
class PipelineConfig:
    """Everything besides weights that sampling needs; saved as pipeline.json."""

    text_encoder: str = DEFAULT_TEXT_ENCODER
    text_max_length: int = 128
    sway_coef: float | None = -1.0  # Dasheng-AudioGen default sway_sampling_coef
    shift_base_dim: int | None = 4096  # RAE shift at sampling; must match training
    latent_mean: float = 0.0  # DiT sees (z - mean) / std
    latent_std: float = 1.0
    frame_rate: float = 25.0
    sample_rate: int = 16000
    # Where the tokenizer lives when it is not stored in tokenizer/: a hub id or a path
    # relative to the pipeline folder (the bundled mini models share one tokenizer this way).
    tokenizer: str | None = None

    @classmethod
    def from_dict(cls, data: dict, source: str = "pipeline config") -> PipelineConfig:
        """Keys and value types checked; errors name `source` and the key."""
        config = typed_config(cls, data, source)
        if config.latent_std <= 0 or config.frame_rate <= 0 or config.sample_rate < 1:
            raise GenerationError(
                f"{source}: latent_std, frame_rate and sample_rate must be > 0 "
                f"(got {config.latent_std}, {config.frame_rate}, {config.sample_rate})"
            )
        return config


def per_prompt_seeds(seed: int | Sequence[int | None] | None, batch: int) -> list[int | None]:
    """One seed per prompt: s -> [s, s+1, ...]; a list is taken as given; None -> [None, ...]."""
    if seed is None or isinstance(seed, int):
        return [None if seed is None else seed + i for i in range(batch)]
    seeds = list(seed)
    if len(seeds) != batch or not all(s is None or isinstance(s, int) for s in seeds):
        raise GenerationError(f"seed={seed}: give one integer seed (or None) per prompt")
    return seeds


def load_tokenizer_arg(tokenizer: Any, hub: dict | None = None) -> Tokenizer | None:
    """A pipeline's `tokenizer=` argument as a `Tokenizer`: a folder or hub id is loaded with
    `load_tokenizer` (any registered family), False or None means none, a model is kept."""
    if tokenizer is None or tokenizer is False:
        return None
    if isinstance(tokenizer, (str, os.PathLike)):
        from sonotok.tokenizer.interface import load_tokenizer

        return load_tokenizer(tokenizer, **(hub or {}))
    return tokenizer


class TextToAudioPipeline(PushToHubMixin, abc.ABC):
    """Text -> audio: `pipe(prompts, seconds, num_steps=25, guidance_scale=5.0, seed=0)` -> list
    of 1-D waveforms at `config.sample_rate`; `inpaint`, `continuation`, `generate_latents`,
    `save_pretrained`, `from_pretrained` (any pipeline folder or hub id, by its type).

    An implementation sets `config` (a PipelineConfig: at least sample and frame rate),
    `tokenizer` (a `Tokenizer`, or None for latents only), `text_encoder` and `autocast_dtype`,
    and defines `device`, `components`, `generate_latents`, `save_pretrained` and `from_folder`.
    Calling `TextToAudioPipeline(dit, text_encoder, ...)` itself builds the sonotok
    `DiTPipeline`, as it did before the implementations were split.
    """

    #: The folder type the factory dispatches on (generation/factory.py PIPELINE_TYPES).
    pipeline_type: ClassVar[str]
    #: With per-prompt seeds, does a clip not depend on the rest of its batch?
    batch_independent: ClassVar[bool] = False
    #: The duration when `seconds` is None (None: the model predicts one per prompt).
    default_seconds: ClassVar[float | None] = None

    config: PipelineConfig
    tokenizer: Tokenizer | None
    autocast_dtype: torch.dtype | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> TextToAudioPipeline:
        if cls is TextToAudioPipeline:  # the base called directly: the sonotok DiT pipeline
            cls = pipeline_class(SONOTOK_PIPELINE)
        return super().__new__(cls)

    # ---- what an implementation defines --------------------------------------------
    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Where the models run."""

    @abc.abstractmethod
    def components(self) -> list[nn.Module | None]:
        """The models `to()` moves (None entries are skipped)."""

    @abc.abstractmethod
    def generate_latents(
        self,
        prompts: str | Sequence[str],
        seconds: float | Sequence[float] | None = None,
        num_steps: int = 25,
        guidance_scale: float = 5.0,
        negative_prompt: str | Sequence[str] | None = None,
        seed: int | Sequence[int | None] | None = None,
        generator: torch.Generator | None = None,
        sway_coef: float | None = None,
        known: Tensor | None = None,
        known_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Tokenizer latents [B, T, D] (zero past each length) and frame mask [B, T].

        `known` [B, T, D] latents and `known_mask` [B, T] bool (True = keep) make this
        inpainting: only frames where known_mask is False are generated, the others equal
        `known` (what `inpaint` and `continuation` build on).
        """

    @abc.abstractmethod
    def save_pretrained(
        self, path: str | os.PathLike, tokenizer_reference: str | None = None
    ) -> Path:
        """Write the pipeline into folder `path` so that `from_pretrained(path)` loads it;
        `tokenizer_reference` (hub id or path relative to `path`) names the tokenizer instead
        of copying it."""

    @classmethod
    @abc.abstractmethod
    def from_folder(
        cls, folder: Path, tokenizer: Any = None, text_encoder: Any = None, hub: dict | None = None
    ) -> TextToAudioPipeline:
        """Load the implementation's own folder type (the factory has resolved `folder`)."""

    # ---- shared ----------------------------------------------------------------------
    def to(
        self, device: str | torch.device, dtype: torch.dtype | None = None
    ) -> TextToAudioPipeline:
        """Move all parts to `device`; `dtype` (e.g. torch.bfloat16) runs the generator under
        autocast."""
        self.autocast_dtype = dtype
        for part in self.components():
            if part is not None:
                part.to(device)
        return self

    @staticmethod
    def prompt_list(prompts: str | Sequence[str]) -> list[str]:
        """Prompts as a non-empty list of non-empty strings."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or any(not p.strip() for p in prompts):
            raise GenerationError("empty prompt; give at least one non-empty text prompt")
        return prompts

    @staticmethod
    def seconds_list(seconds: float | Sequence[float], batch: int) -> list[float]:
        """One positive, finite duration per prompt (a number applies to all)."""
        secs = (
            [float(seconds)] * batch
            if isinstance(seconds, (int, float))
            else [float(s) for s in seconds]
        )
        if len(secs) != batch or not all(0 < s < float("inf") for s in secs):
            raise GenerationError(f"seconds={seconds}: need one positive duration per prompt")
        return secs

    def _require_tokenizer(self) -> None:
        if self.tokenizer is None:
            raise GenerationError(
                "this pipeline has no tokenizer to decode latents; pass tokenizer= (a folder or "
                "hub id) or use generate_latents()"
            )

    def _decode(
        self, latents: Tensor, mask: Tensor, seconds: list[float] | None = None
    ) -> list[Tensor]:
        """[B, T, D] -> list of 1-D waves, cut to each mask length (or to `seconds` when given)."""
        self._require_tokenizer()
        frames = [int(n) for n in mask.sum(1)]
        if len(set(frames)) == 1:
            waves = self.tokenizer.decode(latents[:, : frames[0]])
        else:  # each clip alone: the decoder's convolutions must not see another clip's padding
            waves = self.tokenizer.decode([z[:n] for z, n in zip(latents, frames)])
        hop = round(self.config.sample_rate / self.config.frame_rate)
        sizes = [n * hop for n in frames]
        if seconds is not None:
            sizes = [min(n, round(s * self.config.sample_rate)) for n, s in zip(sizes, seconds)]
        return [w[:n].cpu() for w, n in zip(waves, sizes)]

    def __call__(
        self,
        prompts: str | Sequence[str],
        seconds: float | Sequence[float] | None = None,
        num_steps: int = 25,
        guidance_scale: float = 5.0,
        negative_prompt: str | Sequence[str] | None = None,
        seed: int | Sequence[int | None] | None = None,
        **kwargs,
    ) -> list[Tensor]:
        """Text -> list of 1-D waveforms at `config.sample_rate`, one per prompt, each
        `seconds` long (None: `default_seconds`, or the model's predicted duration). A seed
        makes the result repeatable (see the implementation for how it maps to prompts).
        `kwargs` go to `generate_latents` (sway_coef, generator)."""
        prompts = self.prompt_list(prompts)
        self._require_tokenizer()
        seconds = self.default_seconds if seconds is None else seconds
        latents, mask = self.generate_latents(
            prompts, seconds, num_steps, guidance_scale, negative_prompt, seed, **kwargs
        )
        cut = None if seconds is None else self.seconds_list(seconds, len(prompts))
        return self._decode(latents, mask, cut)

    @torch.no_grad()
    def inpaint(
        self,
        prompts: str | Sequence[str],
        audio: Tensor,
        start: float,
        end: float | None = None,
        crossfade: float = DEFAULT_CROSSFADE,
        **kwargs,
    ) -> list[Tensor]:
        """Regenerate `audio` (N,) or (B, N) at `config.sample_rate` between `start` and `end`
        seconds (None: to the end), one clip per prompt; the rest of the clip comes back as given.

        Only the latent frames overlapping the span are generated (the others condition them);
        the output is the input outside [start, end), and over the first and last `crossfade`
        seconds inside the span it fades (equal power) from the input into the generated audio
        and back. `kwargs` go to `generate_latents` (num_steps, guidance_scale, seed, ...).
        """
        prompts, audio = self._edit_inputs(prompts, audio)
        sr, n = self.config.sample_rate, audio.shape[1]
        duration = n / sr
        stop = duration if end is None else float(end)
        if not 0 <= start < stop <= duration + 0.5 / sr:
            raise GenerationError(
                f"span {start:g}-{stop:g} s: need 0 <= start < end <= {duration:.3f} s "
                "(the clip's length)"
            )
        s, e = round(start * sr), min(n, round(stop * sr))
        if e <= s:
            raise GenerationError(f"span {start:g}-{stop:g} s is shorter than one sample")
        generated = self._regenerate(prompts, audio, s, e, n, **kwargs)
        fade = round(crossfade * sr)
        audio = audio.expand(len(prompts), -1)
        return [splice(a, g, s, e, fade, "equal_power") for a, g in zip(audio, generated)]

    @torch.no_grad()
    def continuation(
        self,
        prompts: str | Sequence[str],
        audio: Tensor,
        seconds: float,
        crossfade: float = DEFAULT_CROSSFADE,
        **kwargs,
    ) -> list[Tensor]:
        """`audio` (N,) or (B, N) at `config.sample_rate` followed by `seconds` of new audio
        generated with the clip as context, one clip per prompt.

        The clip comes back as given except its last `crossfade` seconds, which fade (linearly:
        there the generated audio re-synthesises the same clip) into the generated audio, so the
        seam has no click. `kwargs` go to `generate_latents`.
        """
        prompts, audio = self._edit_inputs(prompts, audio)
        if not 0 < seconds < float("inf"):
            raise GenerationError(f"seconds={seconds}: the continuation needs a positive length")
        sr, n = self.config.sample_rate, audio.shape[1]
        total = n + max(1, round(seconds * sr))
        generated = self._regenerate(prompts, audio, n, total, total, **kwargs)
        padded = torch.nn.functional.pad(audio, (0, total - n)).expand(len(prompts), -1)
        fade = min(round(crossfade * sr), n)
        return [splice(a, g, n - fade, total, fade, "linear") for a, g in zip(padded, generated)]

    def _edit_inputs(self, prompts: str | Sequence[str], audio: Tensor) -> tuple[list[str], Tensor]:
        """Prompts as a list and audio as float32 (1 or B, N) on the CPU (one clip shared by all
        prompts, or one per prompt)."""
        if self.tokenizer is None:
            raise GenerationError(
                "inpainting and continuation need a tokenizer to encode the audio; pass tokenizer="
            )
        prompts = self.prompt_list(prompts)
        audio = torch.as_tensor(audio).detach().float().cpu()
        audio = audio[None] if audio.ndim == 1 else audio
        if audio.ndim != 2:
            raise GenerationError(
                f"audio has shape {tuple(audio.shape)}; pass a mono clip (N,) or a batch (B, N)"
            )
        if audio.shape[0] not in (1, len(prompts)):
            raise GenerationError(
                f"{audio.shape[0]} clips for {len(prompts)} prompts; give one clip, or one per prompt"
            )
        return prompts, audio

    def _regenerate(
        self, prompts: list[str], audio: Tensor, start: int, end: int, total: int, **kwargs
    ) -> Tensor:
        """(B, total) decoded latents of `audio` (B, N <= total) with the frames overlapping
        samples [start, end) generated and every other frame kept from the encoded clip."""
        if "seconds" in kwargs:
            raise GenerationError("seconds= does not apply here: the clip sets the length")
        hop = self.tokenizer.output_hop_samples  # `audio` is at config.sample_rate, the output's
        frames = math.ceil(total / hop)
        n = audio.shape[1]
        clip = torch.nn.functional.pad(audio, (0, math.ceil(n / hop) * hop - n))
        encoded = self.tokenizer.encode(clip.to(self.device), sample_rate=self.config.sample_rate)
        known = encoded.new_zeros(len(prompts), frames, encoded.shape[-1])
        width = min(frames, encoded.shape[1])
        known[:, :width] = encoded[:, :width]
        keep = torch.zeros(len(prompts), frames, dtype=torch.bool, device=self.device)
        keep[:, : min(start // hop, width)] = True
        keep[:, math.ceil(end / hop) : width] = True
        z, _ = self.generate_latents(prompts, known=known, known_mask=keep, **kwargs)
        waves = self.tokenizer.decode(z)
        return waves[:, :total].float().cpu()

    # ---- loading ---------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        tokenizer: Any = None,
        text_encoder: Any = None,
        device: str | torch.device = "cpu",
        revision: str | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> TextToAudioPipeline:
        """Load any pipeline folder or hub id by its type (`sonotok.generation.factory`): a
        sonotok pipeline gives a `DiTPipeline`, an official `mispeech/Dasheng-AudioGen` a
        `DashengAudioGenPipeline`. On a subclass, a folder of another type is an error.

        `tokenizer`: a `Tokenizer`, or a folder / hub id overriding the pipeline's own (False:
        none, `generate_latents` only); `text_encoder`: a loaded encoder to use instead of the
        one the pipeline names; `revision`, `cache_dir`, `token`, `local_files_only`: as in
        huggingface_hub.
        """
        return load_pipeline(
            name_or_path,
            tokenizer,
            text_encoder,
            device,
            revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            expected=cls,
        )
