"""The official Dasheng-AudioGen behind the `TextToAudioPipeline` type.

Folder (type `dasheng_audiogen` for the factory): the official layout, config.json +
model.safetensors (or shards), optionally the text tokenizer's files; the FLAN-T5 text encoder
and the audio tokenizer load by the names in config.json unless given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sonotok.core.hub import write_pretrained

from ..errors import GenerationError
from ..flow import make_scheduler
from ..pipeline import PipelineConfig, TextToAudioPipeline, load_tokenizer_arg, per_prompt_seeds
from ..text import TextEncoder
from .loader import OFFICIAL_MODEL_TYPE
from .model import DashengAudioGen, official_sigmas

if TYPE_CHECKING:
    from sonotok.tokenizer.interface import Tokenizer

CAPTION_TAG = "<|caption|>"  # the released model's task tag for text-to-audio


class DashengAudioGenPipeline(TextToAudioPipeline):
    """`pipe(prompts, seconds=None, num_steps=25, guidance_scale=5.0, seed=0)`: durations are
    predicted unless `seconds` is given; prompts without tags get the `<|caption|>` tag.

    An integer seed draws the whole batch's noise from one generator, as the reference does
    (so a clip depends on its batch: `batch_independent` is False); a list draws each prompt's
    noise from its own seed. `inpaint` and `continuation` use the same latent-space inpainting
    as the sonotok pipeline on the reference sampler.
    """

    pipeline_type = OFFICIAL_MODEL_TYPE
    batch_independent = False
    default_seconds = None

    def __init__(
        self,
        model: DashengAudioGen,
        text_encoder,
        tokenizer: Tokenizer | None = None,
        scheduler=None,
    ) -> None:
        self.model = model.eval()
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.autocast_dtype: torch.dtype | None = None
        self.scheduler = scheduler if scheduler is not None else make_scheduler()
        self.config = PipelineConfig(
            text_encoder=model.config.text_encoder_name,
            text_max_length=model.config.tokenizer_max_length,
            sway_coef=-1.0,  # the reference's sway_sampling_coef
            shift_base_dim=None,
            frame_rate=float(model.config.frame_rate),
            sample_rate=model.config.sample_rate,
        )
        if tokenizer is not None and tokenizer.latent_dim != model.config.latent_dim:
            raise GenerationError(
                f"tokenizer latents have {tokenizer.latent_dim} channels but Dasheng-AudioGen "
                f"expects {model.config.latent_dim}; use {model.config.tokenizer_name}"
            )

    @property
    def device(self) -> torch.device:
        return self.model.dummy_ta_embed.device

    def components(self) -> list[nn.Module | None]:
        return [self.model, self.text_encoder, self.tokenizer]

    @staticmethod
    def format_prompt(prompt: str) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise GenerationError("empty prompt; give at least one non-empty text prompt")
        return prompt if prompt.startswith(CAPTION_TAG) else f"{CAPTION_TAG} {prompt}"

    def _content(self, prompts: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        states, mask = self.text_encoder([self.format_prompt(p) for p in prompts])
        return self.model.condition(states.to(self.device), mask.to(self.device))

    def _noise(
        self,
        batch: int,
        length: int,
        seed: int | Sequence[int | None] | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        """[B, D, length]: one generator for the batch (an int seed, as the reference) or one
        per prompt (a list; [s] equals s)."""
        d = self.model.config.latent_dim
        if seed is None or isinstance(seed, int):
            gen = torch.Generator().manual_seed(seed) if seed is not None else generator
            return torch.randn(batch, d, length, generator=gen).to(self.device)
        rows = []
        for s in per_prompt_seeds(seed, batch):
            gen = torch.Generator().manual_seed(s) if s is not None else generator
            rows.append(torch.randn(d, length, generator=gen))
        return torch.stack(rows).to(self.device)

    @torch.no_grad()
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
        """Latents [B, T, D] (zero past each length) and frame mask [B, T]; lengths are
        predicted unless `seconds` (or `known`) sets them. `sway_coef` None: the reference's
        -1; 0: linear sigmas."""
        prompts = self.prompt_list(prompts)
        b = len(prompts)
        content, mask, frames = self._content(prompts)
        if known is not None:
            frames = torch.full((b,), known.shape[1], device=self.device)
        elif seconds is not None:
            secs = self.seconds_list(seconds, b)
            frames = torch.tensor(
                [math.ceil(s * self.config.frame_rate - 1e-6) for s in secs], device=self.device
            )
        frames = frames.clamp_min(1)
        uncond = None
        if negative_prompt is not None and guidance_scale > 1.0:
            negs = [negative_prompt] * b if isinstance(negative_prompt, str) else negative_prompt
            u_content, u_mask, _ = self._content(list(negs))
            uncond = (u_content, u_mask)
        noise = self._noise(b, int(frames.max()), seed, generator)
        coef = self.config.sway_coef if sway_coef is None else sway_coef
        self.scheduler.set_shift(1.0)
        self.scheduler.set_timesteps(sigmas=official_sigmas(num_steps, coef), device=self.device)
        if known is not None:
            known, known_mask = known.to(self.device).float(), known_mask.to(self.device).bool()
        dtype = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            z, x_mask = self.model.sample(
                content,
                mask,
                frames,
                noise,
                self.scheduler,
                guidance_scale,
                uncond,
                known,
                known_mask,
            )
        return z.float() * x_mask[..., None], x_mask

    # ---- persistence ---------------------------------------------------------------
    def save_pretrained(
        self, path: str | os.PathLike, tokenizer_reference: str | None = None
    ) -> Path:
        """The official layout in `path`: config.json + model.safetensors, and the text
        tokenizer's files when the text encoder has a Hugging Face tokenizer (the folder's own
        tokenizer is what loading prefers). The audio tokenizer is named in config.json
        (`tokenizer_name`: the loaded one's name, or `tokenizer_reference`)."""
        path = Path(path)
        config = self.model.config_dict()
        if tokenizer_reference is not None:
            config["tokenizer_name"] = tokenizer_reference
        write_pretrained(path, config, self.model.state_dict())
        text_tokenizer = getattr(self.text_encoder, "tokenizer", None)
        if hasattr(text_tokenizer, "save_pretrained"):
            text_tokenizer.save_pretrained(str(path))
        return path

    @classmethod
    def from_folder(
        cls, folder: Path, tokenizer: Any = None, text_encoder: Any = None, hub: dict | None = None
    ) -> DashengAudioGenPipeline:
        """An official folder; the text encoder (FLAN-T5) and the tokenizer load by the names
        in its config unless given (tokenizer=False: none, `generate_latents` only)."""
        hub = hub or {}
        model = DashengAudioGen.from_pretrained(folder)
        if text_encoder is None:  # like the reference: the repo's own tokenizer.json if it has one
            own = folder if (folder / "tokenizer.json").is_file() else None
            text_encoder = TextEncoder.from_pretrained(
                model.config.text_encoder_name, model.config.tokenizer_max_length, own, **hub
            )
        if tokenizer is None:
            tokenizer = model.config.tokenizer_name
        return cls(model, text_encoder, load_tokenizer_arg(tokenizer, hub))
