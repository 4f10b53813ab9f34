"""What the library adapters share: loading through the library's own `from_pretrained`,
mono in / mono out for stereo models, exact frame counts and output lengths."""

from __future__ import annotations

import math
import os

import torch

from sonotok.core.errors import ModelNotFoundError

from ..interface import Tokenizer

HUB_OPTIONS = ("revision", "cache_dir", "token", "local_files_only")


def load_library_model(model_class, name_or_path: str | os.PathLike, **hub_options):
    """`model_class.from_pretrained` (local folder or hub id); a missing model or failed
    download becomes ModelNotFoundError naming the input."""
    options = {k: v for k, v in hub_options.items() if v is not None}
    try:
        return model_class.from_pretrained(str(name_or_path), **options)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(
            f"{name_or_path}: cannot load a {model_class.__name__} ({err}); pass a folder "
            "written by save_pretrained or a reachable hub id"
        ) from err


class LibraryCodec(Tokenizer):
    """A `Tokenizer` around a library model held as `self.model`.

    Every clip is padded with zeros to a whole number of hops and encoded alone (a padded
    batch would change a non-causal encoder's output), so an N-sample clip gives
    ceil(N / hop) frames and T frames decode to exactly T · hop samples."""

    hop: int
    rate: int
    channels: int = 1

    sample_rate = property(lambda self: self.rate)
    frame_rate = property(lambda self: self.rate / self.hop)
    hop_samples = property(lambda self: self.hop)

    def num_latent_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop)

    def model_input(self, wave: torch.Tensor) -> torch.Tensor:
        """A 1-D wave → (1, channels, N padded to a multiple of hop) (mono copied per channel)."""
        pad = self.num_latent_frames(wave.shape[-1]) * self.hop - wave.shape[-1]
        x = torch.nn.functional.pad(wave, (0, pad))
        return x.view(1, 1, -1).expand(1, self.channels, -1)

    def fit_output(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, C, N') decoder output → (B, frames · output hop) mono, trimmed or zero-padded."""
        audio = audio.float().mean(1) if audio.dim() == 3 else audio.float()
        n = frames * self.output_hop_samples
        return torch.nn.functional.pad(audio[..., :n], (0, max(0, n - audio.shape[-1])))

    def fit_frames(self, latents: torch.Tensor, num_samples: int) -> torch.Tensor:
        """(T', D) → (ceil(N / hop), D): the frame count promised by `num_latent_frames`."""
        return latents[: self.num_latent_frames(num_samples)]

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """The library's own format (config.json + weights), loadable by the library too."""
        self.model.save_pretrained(str(folder))
