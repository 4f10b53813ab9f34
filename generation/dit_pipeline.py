"""The sonotok text-to-audio pipeline: text encoder + DiT + flow scheduler + tokenizer (glue).

Folder layout written by `save_pretrained` (type `sonotok_pipeline` for the factory):
    pipeline.json   sampling defaults, latent normalisation, text encoder name
    dit/            DiT config.json + model.safetensors
    scheduler/      diffusers scheduler_config.json
    tokenizer/      the tokenizer's own folder (when one is attached and not referenced by name)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sonotok.core.config import read_json_object
from sonotok.core.io import atomic_write

from .dit import DiT
from .errors import GenerationError
from .factory import PIPELINE_CONFIG, SONOTOK_PIPELINE
from .flow import make_scheduler, rae_shift_alpha, sample, set_sigmas
from .pipeline import PipelineConfig, TextToAudioPipeline, load_tokenizer_arg, per_prompt_seeds
from .text import TextEncoder

if TYPE_CHECKING:
    from sonotok.tokenizer.interface import Tokenizer


class DiTPipeline(TextToAudioPipeline):
    """sonotok's DiT on tokenizer latents: `pipe(prompts, seconds=10, num_steps=25,
    guidance_scale=5.0, seed=0)` -> list of 1-D waveforms.

    With a seed, an example's result depends only on its prompt, duration, settings and seed,
    not on the batch (`batch_independent`).
    """

    pipeline_type = SONOTOK_PIPELINE
    batch_independent = True
    default_seconds = 10.0

    def __init__(
        self,
        dit: DiT,
        text_encoder: TextEncoder,
        scheduler=None,
        tokenizer: Tokenizer | None = None,
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
            self.config.sample_rate = int(tokenizer.output_sample_rate)  # of the audio it writes
            if tokenizer.latent_dim != dit.config.latent_dim:
                raise GenerationError(
                    f"tokenizer latents have {tokenizer.latent_dim} channels but the DiT expects "
                    f"{dit.config.latent_dim}; pair the DiT with the tokenizer it was trained on"
                )
        if text_encoder.dim != dit.config.context_dim:
            raise GenerationError(
                f"text encoder {text_encoder.name_or_path!r} gives {text_encoder.dim}-d states but "
                f"the DiT expects {dit.config.context_dim}"
            )

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    def components(self) -> list[nn.Module]:
        return [self.dit, self.text_encoder, self.tokenizer]

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
        seconds: float | Sequence[float] | None = 10.0,
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

        With a seed, an example's own noise generator (`seed` + i, or `seed[i]` for a list),
        sigmas shifted by its own length, and masks that keep padded frames and padded text
        tokens out of attention make its result independent of the batch.
        `known` [B, T, D] tokenizer latents and `known_mask` [B, T] bool (True = keep) turn this
        into inpainting / continuation: only frames where known_mask is False are generated.
        """
        prompts = self.prompt_list(prompts)
        b = len(prompts)
        if known is not None:
            frames = [int(known.shape[1])] * b
        else:
            secs = self.seconds_list(self.default_seconds if seconds is None else seconds, b)
            frames = [math.ceil(s * self.config.frame_rate - 1e-6) for s in secs]
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
        dtype = self.autocast_dtype
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

    # ---- persistence ---------------------------------------------------------------
    def save_pretrained(
        self, path: str | os.PathLike, tokenizer_reference: str | None = None
    ) -> Path:
        """Write pipeline.json, dit/, scheduler/ and (if attached) tokenizer/ into `path`;
        with `tokenizer_reference` (hub id or path relative to `path`) the tokenizer is named
        in pipeline.json instead of copied."""
        path = Path(path)
        self.dit.save_pretrained(path / "dit")
        self.scheduler.save_pretrained(str(path / "scheduler"))
        if self.tokenizer is not None and tokenizer_reference is None:
            self.tokenizer.save_pretrained(path / "tokenizer")
        config = dataclasses.asdict(dataclasses.replace(self.config, tokenizer=tokenizer_reference))
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        atomic_write(path / PIPELINE_CONFIG, lambda tmp: tmp.write_text(text))
        return path

    @classmethod
    def from_folder(
        cls, folder: Path, tokenizer: Any = None, text_encoder: Any = None, hub: dict | None = None
    ) -> DiTPipeline:
        """The pipeline in a local `folder` (see the module docstring); `tokenizer` overrides
        the folder's tokenizer/ or named tokenizer (False: none)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        hub = hub or {}
        config = PipelineConfig.from_dict(
            read_json_object(folder / PIPELINE_CONFIG), str(folder / PIPELINE_CONFIG)
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
            text_encoder = TextEncoder.from_pretrained(
                config.text_encoder, config.text_max_length, **hub
            )
        if tokenizer is None and (folder / "tokenizer").is_dir():
            tokenizer = folder / "tokenizer"
        elif tokenizer is None and config.tokenizer:
            local = folder / config.tokenizer
            tokenizer = local if local.exists() else config.tokenizer
        return cls(dit, text_encoder, scheduler, load_tokenizer_arg(tokenizer, hub), config)
