"""SQCodec ("One Quantizer is Enough") as a discrete sonotok tokenizer.

One FSQ code per frame (codes (T, 1); 117,649 or 250,047 codes), embeddings (T, 256) = the
quantized features the decoder consumes. Loads the official release strictly (see `loading.py`
for the names: `zhai-lw/SQCodec:6kbps`, `sqcodec-6kbps`, `<folder>:<config>`, ...) and sonotok
folders (config.json `model_type: "sqcodec"` + model.safetensors).

Lengths. The reference pads every input with zeros to a multiple of hop × window (0.84 s at
6kbps, 4.5 s at 0k75bps) and returns codes for all of it. We run the same padded input (so codes
are identical) and keep the ceil(N / hop) frames that cover the clip; `decode` turns T frames
into exactly T · hop samples, and `reconstruct` returns the input's length. The reference's
sample code decodes the padding's codes too and then cuts to N; its decoder sees tens of frames and
its gates normalise over the whole clip, so that audio differs from our `reconstruct` throughout
(most on short clips, where the padding is a large share). `reconstruct_like_reference(wave)`
reproduces it exactly.

Batches: clips are encoded and decoded one by one (a padded batch would change the encoder's
output near each clip's end and the decoder's clip-wide instance norm), so a mixed-length batch
equals one-by-one calls. Long clips: `chunk_frames=` (default: 30 s of frames) bounds memory and
equals one pass up to float rounding (see `chunking.py`). `model.forward(wave)` is the training path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.utils.parametrize

from sonotok.core.hub import HubMixin

from ..interface import Tokenizer, register_tokenizer
from . import loading
from .chunking import decode_chunked, encode_chunked
from .configs import SQCodecConfig
from .model import SQCodecModel

__all__ = ["CHUNK_SECONDS", "SQCodecTokenizer"]

#: Default memory bound: clips longer than this are encoded / decoded in chunks of this many
#: seconds' frames (`chunk_frames="auto"`), with the same result; `chunk_frames=None`: one pass.
CHUNK_SECONDS = 30


@register_tokenizer("sqcodec")
class SQCodecTokenizer(HubMixin, Tokenizer):
    """The tokenizer around one `SQCodecModel` (`self.model`)."""

    config_class = SQCodecConfig

    def __init__(self, config: SQCodecConfig | None = None, model: SQCodecModel | None = None):
        super().__init__()
        self.config = config or SQCodecConfig()
        self.model = model if model is not None else SQCodecModel(self.config)

    # ---- facts ----------------------------------------------------------------------------
    sample_rate = property(lambda self: self.config.sample_rate)
    frame_rate = property(lambda self: self.config.frame_rate)
    latent_dim = property(lambda self: self.config.feature_dim)
    codebook_size = property(lambda self: self.config.codebook_size)
    num_codebooks = property(lambda self: 1)
    hop_samples = property(lambda self: self.config.hop_length)

    def num_latent_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.config.hop_length)

    def _chunk(self, chunk_frames: int | str | None) -> int | None:
        """`chunk_frames` as frames: "auto" → `CHUNK_SECONDS` of frames; None → one pass."""
        if chunk_frames == "auto":
            return math.ceil(CHUNK_SECONDS * self.frame_rate)
        return chunk_frames

    def describe(self) -> dict:
        return {**super().describe(), "config": self.config.name}

    # ---- encoding -------------------------------------------------------------------------
    def _encode_one(
        self, wave: torch.Tensor, chunk_frames: int | None, progress: Callable | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) → codes (T,), embeddings (T, D) for the T = ceil(N / hop) covering frames."""
        padded, chunk_frames = self.model.pad(wave[None]), self._chunk(chunk_frames)
        with torch.nn.utils.parametrize.cached():
            if chunk_frames is None or padded.shape[-1] // self.hop_samples <= chunk_frames:
                features = self.model.encode_features(padded)
            else:
                features = encode_chunked(self.model, padded, chunk_frames, progress)
        latents, codes, _ = self.model.quantizer(features)
        frames = self.num_latent_frames(wave.shape[-1])
        return codes[0, :frames], latents[0, :frames]

    def codes_waves(
        self, waves: list[torch.Tensor], chunk_frames: int | str | None = "auto"
    ) -> list[torch.Tensor]:
        return [self._encode_one(w, chunk_frames, None)[0][:, None] for w in waves]

    def encode_waves(
        self,
        waves: list[torch.Tensor],
        features: str,
        chunk_frames: int | str | None = "auto",
        progress: Callable | None = None,
    ) -> list[torch.Tensor]:
        """[(N_i,)] → [(ceil(N_i / hop), D)] code embeddings; `chunk_frames` bounds memory."""
        out = []
        for i, wave in enumerate(waves):
            part = None
            if progress is not None:
                part = lambda f, i=i: progress((i + f) / len(waves))  # noqa: E731
            out.append(self._encode_one(wave, chunk_frames, part)[1])
        if progress is not None:
            progress(1.0)
        return out

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, 1) int codes → (B, T, D) embeddings; codes outside the codebook are refused."""
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(
                f"codes range over [{int(codes.min())}, {int(codes.max())}] but this SQCodec "
                f"({self.config.name}) has codes 0..{self.codebook_size - 1}; were they made by "
                "another model?"
            )
        return self.model.quantizer.embed(codes[..., 0])

    # ---- decoding -------------------------------------------------------------------------
    def decode_latents(
        self,
        latents: torch.Tensor,
        chunk_frames: int | str | None = "auto",
        progress: Callable | None = None,
    ) -> torch.Tensor:
        """(B, T, D) → (B, T · hop), clip by clip; `chunk_frames` bounds memory (equal result)."""
        out, chunk_frames = [], self._chunk(chunk_frames)
        with torch.nn.utils.parametrize.cached():
            for i, z in enumerate(latents.float()):
                if chunk_frames is None or z.shape[0] <= chunk_frames:
                    out.append(self.model.decode_features(z[None])[0])
                else:
                    part = None
                    if progress is not None:
                        part = lambda f, i=i: progress((i + f) / len(latents))  # noqa: E731
                    out.append(decode_chunked(self.model, z[None], chunk_frames, part)[0])
        if progress is not None:
            progress(1.0)
        return torch.stack(out)

    @torch.no_grad()
    def reconstruct_like_reference(self, wave: torch.Tensor) -> torch.Tensor:
        """(N,) at `sample_rate` → (N,) as the reference's sample code makes it: the codes of
        the whole padded input decoded, then cut to N (see the module docstring)."""
        wave = wave.to(self.device, torch.float32)
        with torch.nn.utils.parametrize.cached():
            latents, _, _ = self.model.quantizer(
                self.model.encode_features(self.model.pad(wave[None]))
            )
            return self.model.decode_features(latents)[0, : wave.shape[-1]]

    # ---- checkpoints ----------------------------------------------------------------------
    @classmethod
    def claims(cls, name: str) -> bool:
        """The official names of `loading.py` (hub id with a config, aliases, local copies)."""
        return loading.claims(name)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        compute_dtype=None,
        *,
        config: SQCodecConfig | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> SQCodecTokenizer:
        """A sonotok folder (config.json + model.safetensors) or an official name; `config`
        replaces the official config of that name (e.g. reduced test models in its layout)."""
        hub = dict(revision=revision, cache_dir=cache_dir, token=token)
        name = str(name_or_path)
        if loading.claims(name) and not (Path(name).expanduser() / "config.json").is_file():
            source, config_name = loading.parse_name(name)
            folder = loading.official_folder(
                source, config_name, local_files_only=local_files_only, **hub
            )
            config = loading.config_for(config_name, config)
            model = cls(config, loading.load_official(folder, config))
        else:
            model = super().from_pretrained(name_or_path, local_files_only=local_files_only, **hub)
        return model.set_compute_dtype(compute_dtype).to(device or "cpu").eval()
