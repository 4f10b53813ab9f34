"""AudioTokenizer: 16 kHz audio ⇄ 25 Hz continuous latents z = z_semantic + z_acoustic."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from sonotok.core.hub import HubMixin, init_derived_buffers, rename_keys

from .acoustic import AcousticProjection
from .checkpoints import OFFICIAL_TOKENIZER_KEYS
from .config import OFFICIAL_MODEL_TYPE, TokenizerConfig
from .decoder import VocosDecoder, synthesize_chunked
from .interface import AudioInput, Tokenizer, register_tokenizer
from .mel import num_frames
from .semantic import SemanticEncoder, stream_tokens

Features = Literal["fused", "semantic", "acoustic"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@register_tokenizer("sonotok-tokenizer", OFFICIAL_MODEL_TYPE)
class AudioTokenizer(HubMixin, Tokenizer):
    """Frozen Dasheng semantic encoder + trained mel patch projection → latents; Vocos → audio.

    >>> tok = AudioTokenizer.from_pretrained("mispeech/dashengtokenizer")
    >>> z = tok.encode(wave, sample_rate=sr)  # (T, 1280) at 25 Hz
    >>> audio = tok.decode(z)  # (T * 640,) at 16 kHz

    Inputs: one wave (N,), a padded batch (B, N) with optional `attention_mask`, or a
    list of waves of different lengths; outputs follow the same shape convention (the
    `Tokenizer` interface). T = (1 + N // 160) // 4 frames for N samples at 16 kHz.
    `encode(features=...)`: "fused" (z = z_sem + z_ac, what the decoder expects), "semantic"
    or "acoustic"; `chunks_per_pass` bounds encoder memory, `decode(chunk_frames=...)` decoder
    memory — results equal a single pass.
    """

    def __init__(self, config: TokenizerConfig | None = None):
        super().__init__()
        self.config = config = config or TokenizerConfig()
        self.semantic = SemanticEncoder(config.semantic)
        self.acoustic = AcousticProjection(config.acoustic)
        d = config.semantic.embed_dim
        self.upsampler = (
            nn.ConvTranspose1d(d, d, kernel_size=config.upsample, stride=config.upsample)
            if config.upsample > 1
            else nn.Identity()
        )
        self.decoder = VocosDecoder(config.decoder)
        self.semantic.requires_grad_(False)  # frozen in every use of the tokenizer
        self.eval()

    feature_names = ("fused", "semantic", "acoustic")

    # ---- facts ------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_samples(self) -> int:
        """Samples per latent frame (640 at 16 kHz)."""
        return self.config.hop_samples

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_samples

    @property
    def latent_dim(self) -> int:
        return self.config.semantic.embed_dim

    @property
    def device(self) -> torch.device:
        return self.decoder.head.out.weight.device

    def num_latent_frames(self, num_samples: int) -> int:
        """T = (1 + N // 160) // 4 for N samples at 16 kHz."""
        return self.semantic.token_count(num_samples)

    def set_compute_dtype(self, dtype: torch.dtype | str | None) -> AudioTokenizer:
        """Hold and run the ViT blocks and the ConvNeXt backbone in bf16/fp16 (None: fp32).

        For inference: halves their memory and uses low-precision kernels. The mel front
        ends, patch embeddings, upsampler and ISTFT head stay fp32. The cast is one-way:
        going back to fp32 does not restore the dropped bits (reload the model for that).
        Training keeps fp32 weights and uses accelerate's autocast instead.
        """
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(
                    f"compute dtype {dtype!r} not supported; use one of {sorted(_DTYPES)}"
                )
            dtype = _DTYPES[dtype]
        dtype = dtype or torch.float32
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"compute dtype {dtype!r} not supported; use fp32, bf16 or fp16")
        self.semantic.set_compute_dtype(dtype)
        self.decoder.backbone.to(dtype)
        return self

    # ---- encoding ---------------------------------------------------------------------
    def embed(
        self,
        waves: list[torch.Tensor],
        features: Features = "fused",
        chunks_per_pass: int = 16,
        progress: Callable[[float], None] | None = None,
    ) -> list[torch.Tensor]:
        """The latents of each 16 kHz wave, (T_i, D). Gradients flow into the acoustic branch.

        Long clips are processed a bounded number of 10.08 s chunks at a time; every
        piece is computed exactly as in a single pass (chunk-aligned pieces, STFT
        frames read with their true context), so the result does not depend on it.
        `progress(fraction)` is called after each piece (for progress bars on long files).
        """
        if features not in ("fused", "semantic", "acoustic"):
            raise ValueError(f"features={features!r}; choose 'fused', 'semantic' or 'acoustic'")
        references = None
        if features != "acoustic":
            with torch.no_grad():
                references = [self.semantic.max_power(w) for w in waves]

        def segment(start: int, stop: int) -> torch.Tensor:
            z = 0
            if features != "acoustic":
                with torch.no_grad():
                    z = self.semantic.embed_segment(waves, references, start, stop)
            if features != "semantic":
                z = z + self.acoustic.embed_segment(waves, start, stop)
            return z

        return stream_tokens(waves, self.config.semantic, chunks_per_pass, segment, progress)

    def encode_waves(
        self,
        waves: list[torch.Tensor],
        features: str,
        chunks_per_pass: int = 16,
        progress: Callable[[float], None] | None = None,
    ) -> list[torch.Tensor]:
        """`Tokenizer.encode`'s per-clip step: `embed` without gradients. `encode(...,
        chunks_per_pass=N)` bounds how many 10.08 s chunks go through the encoder at once."""
        with torch.no_grad():
            return self.embed(waves, features, chunks_per_pass, progress)

    def decode_latents(
        self,
        latents: torch.Tensor,
        chunk_frames: int | None = 750,
        progress: Callable[[float], None] | None = None,
    ) -> torch.Tensor:
        """`Tokenizer.decode`'s batch step: `synthesize` in overlapping chunks of `chunk_frames`
        latent frames (`decode(z, chunk_frames=None)`: one pass); equal to a single pass."""
        return self.synthesize(latents, chunk_frames, progress)

    # ---- decoding ---------------------------------------------------------------------
    def _decode_frames(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, D) → (B, T · hop_samples), one pass."""
        x = self.upsampler(latents.transpose(1, 2).to(self.device, torch.float32))
        return self.decoder(x)

    @property
    def decoder_context(self) -> int:
        """Latent frames on each side that influence a frame's samples (receptive field)."""
        return math.ceil(self.config.decoder.receptive_radius / self.config.upsample) + 1

    def synthesize(
        self,
        latents: torch.Tensor,
        chunk_frames: int | None = 750,
        progress: Callable[[float], None] | None = None,
    ) -> torch.Tensor:
        """(B, T, D) → (B, T · 640), in overlapping chunks of `chunk_frames` latent frames
        (None: one pass). Each chunk is decoded with `decoder_context` extra frames per
        side, more than the decoder's receptive field, so the result equals one pass.
        `progress(fraction)` is called after each chunk."""
        return synthesize_chunked(
            self._decode_frames,
            latents,
            chunk_frames,
            self.decoder_context,
            self.hop_samples,
            progress,
        )

    @torch.no_grad()
    def forward(self, audio: AudioInput, attention_mask: torch.Tensor | None = None) -> dict:
        """The reference model's forward: {"embeddings": encode(audio), "audio": decode of them}
        (16 kHz, T · 640 samples)."""
        latents = self.encode(audio, attention_mask)
        return {"embeddings": latents, "audio": self.decode(latents)}

    # ---- checkpoints (sonotok.core.hub.HubMixin) ---------------------------------------
    config_class = TokenizerConfig

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def config_from_dict(cls, values: dict, where: str) -> TokenizerConfig:
        """Our config.json, or mispeech/dashengtokenizer's (by its model_type)."""
        return TokenizerConfig.from_dict(values, where)

    @classmethod
    def convert_state(cls, values: dict, state: dict[str, torch.Tensor]) -> dict:
        """The official folder's key names → ours (`OFFICIAL_TOKENIZER_KEYS`)."""
        if values.get("model_type") == OFFICIAL_MODEL_TYPE:
            return rename_keys(state, OFFICIAL_TOKENIZER_KEYS)
        return state

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        compute_dtype: torch.dtype | str | None = None,
        **hub,
    ) -> AudioTokenizer:
        """Load a tokenizer strictly: a hub id (default family: mispeech/dashengtokenizer),
        a downloaded official folder, or a folder written by `save_pretrained`.

        hub: `revision`, `cache_dir`, `token`, `local_files_only` (`sonotok.core.hub.resolve`).
        """
        model = super().from_pretrained(name_or_path, **hub)
        model.set_compute_dtype(compute_dtype)
        return model.to(device or "cpu").eval()

    def reset_derived_buffers(self) -> None:
        """Recompute the non-persistent front-end tables (after building on the meta device)."""
        init_derived_buffers(self)

    @classmethod
    def from_semantic_encoder(
        cls, encoder: SemanticEncoder, config: TokenizerConfig | None = None
    ) -> AudioTokenizer:
        """A new tokenizer (randomly initialised acoustic branch and decoder) on a
        pretrained semantic encoder of any Dasheng size; latent width follows the encoder."""
        d = encoder.embed_dim
        base = config or TokenizerConfig()
        config = TokenizerConfig(
            semantic=encoder.config,
            acoustic=type(base.acoustic)(**{**base.acoustic.to_dict(), "embed_dim": d}),
            decoder=type(base.decoder)(**{**base.decoder.to_dict(), "input_dim": d}),
            upsample=base.upsample,
        )
        model = cls(config)
        model.semantic.load_state_dict(encoder.state_dict())
        return model


def num_latent_frames(num_samples: int, hop_length: int = 160, patch_frames: int = 4) -> int:
    """T = (1 + N // 160) // 4: latent frames for N samples at 16 kHz."""
    return num_frames(num_samples, hop_length) // patch_frames
