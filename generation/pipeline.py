"""TextToAudioPipeline: text encoder + DiT + flow scheduler + tokenizer decoder (glue, no math).

Folder layout written by `save_pretrained`:
    pipeline.json   sampling defaults, latent normalisation, text encoder name
    dit/            DiT config.json + model.safetensors
    scheduler/      diffusers scheduler_config.json
    tokenizer/      AudioTokenizer config.json + model.safetensors (when a decoder is attached)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .dit import DiT, typed_config
from .flow import make_scheduler, rae_shift_alpha, sample, set_sigmas
from .hub import GenerationError, read_json, resolve_pretrained, write_json
from .splice import DEFAULT_CROSSFADE, splice
from .text import DEFAULT_TEXT_ENCODER, TextEncoder

PIPELINE_CONFIG = "pipeline.json"


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


class TextToAudioPipeline:
    """`pipe(prompts, seconds=10, num_steps=25, guidance_scale=5.0)` -> list of 1-D waveforms."""

    def __init__(
        self,
        dit: DiT,
        text_encoder: TextEncoder,
        scheduler=None,
        tokenizer=None,
        config: PipelineConfig | None = None,
    ) -> None:
        self.dit = dit.eval()
        self.text_encoder = text_encoder
        self.scheduler = scheduler if scheduler is not None else make_scheduler()
        self.tokenizer = tokenizer
        self.autocast_dtype: torch.dtype | None = None
        self.config = config or PipelineConfig(text_encoder=text_encoder.name_or_path)
        if tokenizer is not None:
            self.config.frame_rate = float(tokenizer.frame_rate)
            self.config.sample_rate = int(tokenizer.sample_rate)
            if tokenizer.latent_dim != dit.config.latent_dim:
                raise GenerationError(
                    f"tokenizer latents have {tokenizer.latent_dim} channels but the DiT "
                    f"expects {dit.config.latent_dim}; pair the DiT with the tokenizer it was trained on"
                )
        if text_encoder.dim != dit.config.context_dim:
            raise GenerationError(
                f"text encoder {text_encoder.name_or_path!r} gives {text_encoder.dim}-d states but "
                f"the DiT expects {dit.config.context_dim}"
            )

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    def to(
        self, device: str | torch.device, dtype: torch.dtype | None = None
    ) -> TextToAudioPipeline:
        """Move all parts to `device`; `dtype` (e.g. torch.bfloat16) runs the DiT under autocast."""
        self.autocast_dtype = dtype
        self.dit.to(device)
        self.text_encoder.to(device)
        if self.tokenizer is not None:
            self.tokenizer.to(device)
        return self

    # ---- sampling ------------------------------------------------------------------
    def _noise(
        self,
        frames: list[int],
        seed: int | Sequence[int | None] | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        """[B, max(frames), D] noise, each example from its own generator (batch-independent):
        seed s gives example i the seed s + i; a list gives each example its own seed (None:
        drawn from `generator` / the global RNG)."""
        d, length = self.dit.config.latent_dim, max(frames)
        noise = torch.zeros(len(frames), length, d)
        for i, (n, s) in enumerate(zip(frames, per_prompt_seeds(seed, len(frames)))):
            gen = torch.Generator().manual_seed(s) if s is not None else generator
            noise[i, :n] = torch.randn(n, d, generator=gen)
        return noise.to(self.device)

    def _schedulers(self, frames: list[int], num_steps: int, sway_coef: float | None) -> list:
        """One scheduler per example, RAE-shifted by its own length as in training (equal
        lengths share one), so an example's sigmas do not depend on its batch."""
        by_length = {}
        for n in sorted(set(frames)):
            shift = (
                rae_shift_alpha(n, self.dit.config.latent_dim, self.config.shift_base_dim)
                if self.config.shift_base_dim
                else 1.0
            )
            sched = self.scheduler if not by_length else copy.deepcopy(self.scheduler)
            set_sigmas(sched, num_steps, sway_coef, shift, device=self.device)
            by_length[n] = sched
        return [by_length[n] for n in frames]

    def _encode_text(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        states, mask = self.text_encoder(list(prompts))
        return states.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def generate_latents(
        self,
        prompts: str | Sequence[str],
        seconds: float | Sequence[float] = 10.0,
        num_steps: int = 25,
        guidance_scale: float = 5.0,
        negative_prompt: str | Sequence[str] | None = None,
        seed: int | Sequence[int | None] | None = None,
        generator: torch.Generator | None = None,
        sway_coef: float | None = None,
        known: Tensor | None = None,
        known_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Latents [B, T, D] (tokenizer scale, zero past each length) and frame mask [B, T].

        With a seed, an example's result depends only on its prompt, duration, settings and
        seed, not on the batch: its own noise generator (`seed` + i, or `seed[i]` for a list),
        sigmas shifted by its own length, and masks that keep padded frames and padded text
        tokens out of attention.
        `known` [B, T, D] tokenizer latents and `known_mask` [B, T] bool (True = keep) turn this
        into inpainting / continuation: only frames where known_mask is False are generated.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or any(not p.strip() for p in prompts):
            raise GenerationError("empty prompt; give at least one non-empty text prompt")
        b = len(prompts)
        if known is not None:
            frames = [int(known.shape[1])] * b
        else:
            frames = [
                math.ceil(s * self.config.frame_rate - 1e-6) for s in self._seconds(seconds, b)
            ]
        length = max(frames)
        x_mask = (
            torch.arange(length, device=self.device)[None]
            < torch.tensor(frames, device=self.device)[:, None]
        )
        context, context_mask = self._encode_text(prompts)
        uncond, uncond_mask = None, None
        if negative_prompt is not None and guidance_scale != 1.0:
            negs = (
                [negative_prompt] * b if isinstance(negative_prompt, str) else list(negative_prompt)
            )
            uncond, uncond_mask = self._encode_text(negs)
        cfg = self.config
        coef = cfg.sway_coef if sway_coef is None else sway_coef
        schedulers = self._schedulers(frames, num_steps, coef)
        if known is not None:
            known = (known.to(self.device).float() - cfg.latent_mean) / cfg.latent_std
            known_mask = known_mask.to(self.device).bool()
        dtype = getattr(self, "autocast_dtype", None)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            z = sample(
                self.dit,
                schedulers,
                self._noise(frames, seed, generator),
                context,
                x_mask,
                context_mask,
                uncond,
                uncond_mask,
                guidance_scale,
                known,
                known_mask,
            )
        z = z.float()
        return (z * cfg.latent_std + cfg.latent_mean) * x_mask[..., None], x_mask

    @staticmethod
    def _seconds(seconds: float | Sequence[float], batch: int) -> list[float]:
        secs = (
            [float(seconds)] * batch
            if isinstance(seconds, (int, float))
            else [float(s) for s in seconds]
        )
        if len(secs) != batch or not all(0 < s < float("inf") for s in secs):
            raise GenerationError(f"seconds={seconds}: need one positive duration per prompt")
        return secs

    def _decode(
        self, latents: Tensor, mask: Tensor, seconds: list[float] | None = None
    ) -> list[Tensor]:
        """[B, T, D] -> list of 1-D waves, cut to each mask length (or to `seconds` when given)."""
        if self.tokenizer is None:
            raise GenerationError(
                "this pipeline has no tokenizer to decode latents; pass tokenizer= or use generate_latents()"
            )
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
        seconds: float | Sequence[float] = 10.0,
        num_steps: int = 25,
        guidance_scale: float = 5.0,
        negative_prompt: str | Sequence[str] | None = None,
        seed: int | Sequence[int | None] | None = None,
        **kwargs,
    ) -> list[Tensor]:
        """Text -> list of 1-D waveforms at `config.sample_rate`, one per prompt; with a seed
        (prompt i: `seed` + i, or `seed[i]`) a clip does not depend on the rest of the batch."""
        latents, mask = self.generate_latents(
            prompts, seconds, num_steps, guidance_scale, negative_prompt, seed, **kwargs
        )
        return self._decode(latents, mask, self._seconds(seconds, latents.shape[0]))

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
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
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
        hop = self.tokenizer.hop_samples
        frames = math.ceil(total / hop)
        n = audio.shape[1]
        clip = torch.nn.functional.pad(audio, (0, math.ceil(n / hop) * hop - n))
        encoded = self.tokenizer.encode(clip.to(self.device))
        known = encoded.new_zeros(len(prompts), frames, encoded.shape[-1])
        width = min(frames, encoded.shape[1])
        known[:, :width] = encoded[:, :width]
        keep = torch.zeros(len(prompts), frames, dtype=torch.bool, device=self.device)
        keep[:, : min(start // hop, width)] = True
        keep[:, math.ceil(end / hop) : width] = True
        z, _ = self.generate_latents(prompts, known=known, known_mask=keep, **kwargs)
        waves = self.tokenizer.decode(z)
        return waves[:, :total].float().cpu()

    # ---- persistence ---------------------------------------------------------------
    def save_pretrained(
        self, path: str | os.PathLike, tokenizer_reference: str | None = None
    ) -> None:
        """Write pipeline.json, dit/, scheduler/ and (if attached) tokenizer/ into `path`;
        with `tokenizer_reference` (hub id or path relative to `path`) the tokenizer is named
        in pipeline.json instead of copied."""
        path = Path(path)
        self.dit.save_pretrained(path / "dit")
        self.scheduler.save_pretrained(str(path / "scheduler"))
        if self.tokenizer is not None and tokenizer_reference is None:
            self.tokenizer.save_pretrained(path / "tokenizer")
        config = dataclasses.replace(self.config, tokenizer=tokenizer_reference)
        write_json(path / PIPELINE_CONFIG, dataclasses.asdict(config))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        tokenizer=None,
        text_encoder: TextEncoder | None = None,
        device: str | torch.device = "cpu",
        revision: str | None = None,
    ) -> TextToAudioPipeline:
        """Load a pipeline folder (or hub id). `tokenizer` may be an AudioTokenizer or a path/id
        overriding the folder's tokenizer/; without either, only `generate_latents` works.
        An official `mispeech/Dasheng-AudioGen` folder gives a `DashengAudioGenPipeline`."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        from .audiogen import DashengAudioGenPipeline, is_official_folder

        folder = resolve_pretrained(name_or_path, revision)
        if is_official_folder(folder):  # mispeech/Dasheng-AudioGen: same call signature
            return DashengAudioGenPipeline.from_pretrained(folder, tokenizer, text_encoder, device)
        config = PipelineConfig.from_dict(
            read_json(folder / PIPELINE_CONFIG), str(folder / PIPELINE_CONFIG)
        )
        dit = DiT.from_pretrained(folder / "dit")
        try:
            scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder / "scheduler"))
        except (OSError, ValueError, TypeError) as err:  # missing or damaged scheduler config
            raise GenerationError(
                f"{folder / 'scheduler'}: not a readable scheduler config ({type(err).__name__}); "
                "re-save the pipeline"
            ) from None
        if text_encoder is None:
            text_encoder = TextEncoder.from_pretrained(config.text_encoder, config.text_max_length)
        if tokenizer is None and (folder / "tokenizer").is_dir():
            tokenizer = folder / "tokenizer"
        elif tokenizer is None and config.tokenizer:
            local = folder / config.tokenizer
            tokenizer = local if local.exists() else config.tokenizer
        if isinstance(tokenizer, (str, os.PathLike)):
            from sonotok.tokenizer import AudioTokenizer

            tokenizer = AudioTokenizer.from_pretrained(tokenizer)
        return cls(dit, text_encoder, scheduler, tokenizer, config).to(device)
