"""The Stable Audio VAE (`diffusers.AutoencoderOobleck`) as a continuous `Tokenizer`.

The paper's "VAE" class of baselines: 44.1 kHz stereo audio → 64-d latents at 21.5 Hz. Mono
input is copied to both channels and the decoded channels are averaged; latents are the
posterior mean (deterministic). Its config.json names the class (`_class_name`) instead of a
`model_type`; `load_tokenizer` reads either. For `stabilityai/stable-audio-open-1.0` the VAE is
in the `vae` subfolder: pass `subfolder="vae"` to `OobleckTokenizer.from_pretrained`.
"""

from __future__ import annotations

import os

import torch

from ..interface import register_tokenizer
from .common import LibraryCodec, load_library_model


@register_tokenizer("AutoencoderOobleck", "oobleck")
class OobleckTokenizer(LibraryCodec):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model.eval()
        config = model.config
        self.rate = int(config.sampling_rate)
        self.channels = int(config.audio_channels)
        self.hop = int(model.hop_length)

    latent_dim = property(lambda self: int(self.model.config.decoder_input_channels))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device=None,
        compute_dtype=None,
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | None = None,
        local_files_only: bool = False,
        subfolder: str | None = None,
    ) -> OobleckTokenizer:
        """The VAE by `diffusers`' own loader (a folder or hub id, optionally a subfolder)."""
        from diffusers import AutoencoderOobleck

        model = load_library_model(
            AutoencoderOobleck,
            name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only or None,
            subfolder=subfolder,
        )
        return cls(model).set_compute_dtype(compute_dtype).to(device or "cpu").eval()

    def encode_waves(self, waves: list[torch.Tensor], features: str) -> list[torch.Tensor]:
        out = []
        for wave in waves:
            mean = self.model.encode(self.model_input(wave)).latent_dist.mean  # (1, D, T)
            out.append(self.fit_frames(mean[0].transpose(0, 1).float(), wave.shape[-1]))
        return out

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        audio = self.model.decode(latents.float().transpose(1, 2)).sample
        return self.fit_output(audio, latents.shape[1])
