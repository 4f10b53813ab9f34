"""TextToAudioPipeline: text encoder + DiT + flow scheduler + tokenizer decoder (glue, no math).

Folder layout written by `save_pretrained`:
    pipeline.json   sampling defaults, latent normalisation, text encoder name
    dit/            DiT config.json + model.safetensors
    scheduler/      diffusers scheduler_config.json
    tokenizer/      AudioTokenizer config.json + model.safetensors (when a decoder is attached)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .dit import DiT
from .flow import make_scheduler, rae_shift_alpha, sample, set_sigmas
from .hub import GenerationError, read_json, resolve_pretrained, write_json
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
    def from_dict(cls, data: dict) -> PipelineConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GenerationError(f"unknown pipeline config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


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
        self, frames: list[int], seed: int | None, generator: torch.Generator | None
    ) -> Tensor:
        """[B, max(frames), D] noise; with `seed`, example i uses its own seed + i (batch-independent)."""
        d, length = self.dit.config.latent_dim, max(frames)
        noise = torch.zeros(len(frames), length, d)
        for i, n in enumerate(frames):
            gen = torch.Generator().manual_seed(seed + i) if seed is not None else generator
            noise[i, :n] = torch.randn(n, d, generator=gen)
        return noise.to(self.device)

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
        seed: int | None = None,
        generator: torch.Generator | None = None,
        sway_coef: float | None = None,
        known: Tensor | None = None,
        known_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Latents [B, T, D] (tokenizer scale, zero past each length) and frame mask [B, T].

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
        shift = (
            rae_shift_alpha(length, self.dit.config.latent_dim, cfg.shift_base_dim)
            if cfg.shift_base_dim
            else 1.0
        )
        set_sigmas(self.scheduler, num_steps, coef, shift, device=self.device)
        if known is not None:
            known = (known.to(self.device).float() - cfg.latent_mean) / cfg.latent_std
            known_mask = known_mask.to(self.device).bool()
        dtype = getattr(self, "autocast_dtype", None)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            z = sample(
                self.dit,
                self.scheduler,
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
        waves = self.tokenizer.decode(latents)
        hop = round(self.config.sample_rate / self.config.frame_rate)
        sizes = [int(n) * hop for n in mask.sum(1)]
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
        seed: int | None = None,
        **kwargs,
    ) -> list[Tensor]:
        """Text -> list of 1-D waveforms at `config.sample_rate`, one per prompt."""
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
        **kwargs,
    ) -> list[Tensor]:
        """Regenerate audio [B, N] between `start` and `end` seconds (None: to the end).

        end=None with start at the clip's end extends nothing; to continue a clip, pad it with
        silence to the wanted length and regenerate from its original end.
        """
        if self.tokenizer is None:
            raise GenerationError(
                "inpainting needs a tokenizer to encode the audio; pass tokenizer="
            )
        audio = audio[None] if audio.ndim == 1 else audio
        latents = self.tokenizer.encode(audio.to(self.device))
        t = torch.arange(latents.shape[1], device=self.device) / self.config.frame_rate
        regenerate = (t >= start) & (t < (float("inf") if end is None else end))
        keep = (~regenerate)[None].expand(latents.shape[0], -1)
        z, mask = self.generate_latents(prompts, known=latents, known_mask=keep, **kwargs)
        return self._decode(z, mask)

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
        config = PipelineConfig.from_dict(read_json(folder / PIPELINE_CONFIG))
        dit = DiT.from_pretrained(folder / "dit")
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder / "scheduler"))
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
