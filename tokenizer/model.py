"""AudioTokenizer: 16 kHz audio ⇄ 25 Hz continuous latents z = z_semantic + z_acoustic."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from .acoustic import AcousticProjection
from .audio import SAMPLE_RATE, AudioInputError, check_wave, resample, restore_rate_and_length
from .checkpoints import (
    OFFICIAL_TOKENIZER_KEYS,
    load_strict,
    read_config,
    read_weights,
    rename_keys,
    resolve,
    write_pretrained,
)
from .config import OFFICIAL_MODEL_TYPE, TokenizerConfig
from .decoder import VocosDecoder
from .mel import num_frames
from .semantic import SemanticEncoder, stream_tokens

Features = Literal["fused", "semantic", "acoustic"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
AudioInput = torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]


class AudioTokenizer(nn.Module):
    """Frozen Dasheng semantic encoder + trained mel patch projection → latents; Vocos → audio.

    >>> tok = AudioTokenizer.from_pretrained("mispeech/dashengtokenizer")
    >>> z = tok.encode(wave, sample_rate=sr)  # (T, 1280) at 25 Hz
    >>> audio = tok.decode(z)  # (T * 640,) at 16 kHz

    Inputs: one wave (N,), a padded batch (B, N) with optional `attention_mask`, or a
    list of waves of different lengths; outputs follow the same shape convention.
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
    def _as_waves(
        self, audio: AudioInput, attention_mask, sample_rate: int
    ) -> tuple[list[torch.Tensor], str, list[int]]:
        """Normalise the accepted input forms to a list of 1-D 16 kHz float32 tensors,
        the input's form ("single", "batch", "list") and the original lengths."""
        if isinstance(audio, (torch.Tensor, np.ndarray)):
            audio = torch.as_tensor(audio)
            if audio.dim() == 1:
                waves, kind = [audio], "single"
            elif audio.dim() == 2:
                if attention_mask is None:
                    waves = list(audio)
                else:
                    mask = torch.as_tensor(attention_mask)
                    if mask.shape != audio.shape:
                        raise AudioInputError(
                            f"attention_mask shape {tuple(mask.shape)} does not match audio {tuple(audio.shape)}"
                        )
                    lengths = mask.to(torch.int64).sum(-1).tolist()
                    waves = [a[:n] for a, n in zip(audio, lengths)]
                kind = "batch"
            else:
                raise AudioInputError(
                    f"audio has shape {tuple(audio.shape)}; pass (N,) or (B, N) mono waves "
                    "(average channels first: wave.mean(0))"
                )
        else:
            waves, kind = [torch.as_tensor(a) for a in audio], "list"
            if not waves:
                raise AudioInputError("got an empty list of waves; pass at least one")
            for i, w in enumerate(waves):
                if w.dim() != 1:
                    raise AudioInputError(
                        f"input {i}: shape {tuple(w.shape)}; each wave in a list must be 1-D (N,)"
                    )
        lengths = [w.shape[-1] for w in waves]
        if sample_rate != self.sample_rate:
            waves = [
                torch.from_numpy(
                    resample(w.detach().cpu().float().numpy(), sample_rate, self.sample_rate)
                )
                for w in waves
            ]
        device = self.device
        out = []
        for i, w in enumerate(waves):
            check_wave(w, f"input {i}")
            out.append(w.detach().to(device=device, dtype=torch.float32))
        return out, kind, lengths

    def embed(
        self, waves: list[torch.Tensor], features: Features = "fused", chunks_per_pass: int = 16
    ) -> list[torch.Tensor]:
        """The latents of each 16 kHz wave, (T_i, D). Gradients flow into the acoustic branch.

        Long clips are processed a bounded number of 10.08 s chunks at a time; every
        piece is computed exactly as in a single pass (chunk-aligned pieces, STFT
        frames read with their true context), so the result does not depend on it.
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

        return stream_tokens(waves, self.config.semantic, chunks_per_pass, segment)

    @torch.no_grad()
    def encode(
        self,
        audio: AudioInput,
        attention_mask: torch.Tensor | None = None,
        sample_rate: int = SAMPLE_RATE,
        features: Features = "fused",
        chunks_per_pass: int = 16,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Audio → latents at 25 Hz.

        audio: (N,) → (T, D); (B, N) with optional attention_mask (B, N) → (B, T, D),
        zero past each clip's own T; list of (N_i,) → list of (T_i, D).
        T = (1 + N // 160) // 4 at 16 kHz; other rates are resampled with soxr first.
        features: "fused" (z = z_sem + z_ac, what the decoder expects), "semantic" or "acoustic".
        """
        waves, kind, _ = self._as_waves(audio, attention_mask, sample_rate)
        latents = self.embed(waves, features, chunks_per_pass)
        if kind == "single":
            return latents[0]
        if kind == "list":
            return latents
        length = max(z.shape[0] for z in latents)
        return torch.stack(
            [torch.nn.functional.pad(z, (0, 0, 0, length - z.shape[0])) for z in latents]
        )

    # ---- decoding ---------------------------------------------------------------------
    def _decode_frames(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, D) → (B, T · hop_samples), one pass."""
        x = self.upsampler(latents.transpose(1, 2).to(self.device, torch.float32))
        return self.decoder(x)

    @property
    def decoder_context(self) -> int:
        """Latent frames on each side that influence a frame's samples (receptive field)."""
        return math.ceil(self.config.decoder.receptive_radius / self.config.upsample) + 1

    def synthesize(self, latents: torch.Tensor, chunk_frames: int | None = 750) -> torch.Tensor:
        """(B, T, D) → (B, T · 640), in overlapping chunks of `chunk_frames` latent frames
        (None: one pass). Each chunk is decoded with `decoder_context` extra frames per
        side, more than the decoder's receptive field, so the result equals one pass."""
        t = latents.shape[1]
        if chunk_frames is None or t <= chunk_frames:
            return self._decode_frames(latents)
        ctx, hop = self.decoder_context, self.hop_samples
        audio = latents.new_zeros(
            latents.shape[0], t * hop, dtype=torch.float32, device=self.device
        )
        for s in range(0, t, chunk_frames):
            e = min(t, s + chunk_frames)
            a, b = max(0, s - ctx), min(t, e + ctx)
            y = self._decode_frames(latents[:, a:b])
            audio[:, s * hop : e * hop] = y[:, (s - a) * hop : (e - a) * hop]
        return audio

    @torch.no_grad()
    def decode(
        self, latents: torch.Tensor | Sequence[torch.Tensor], chunk_frames: int | None = 750
    ) -> torch.Tensor | list[torch.Tensor]:
        """Latents → 16 kHz audio: (T, D) → (T·640,); (B, T, D) → (B, T·640); list → list.

        Long sequences are decoded in overlapping chunks with bounded memory; the
        output equals a single pass (within float tolerance).
        """
        if isinstance(latents, (list, tuple)):
            return [self.decode(z, chunk_frames) for z in latents]
        latents = torch.as_tensor(latents)
        if latents.dim() not in (2, 3) or latents.shape[-1] != self.latent_dim:
            raise ValueError(
                f"latents have shape {tuple(latents.shape)}; expected (T, {self.latent_dim}) or (B, T, {self.latent_dim})"
            )
        if latents.shape[-2] == 0:
            raise ValueError("latents have 0 frames; nothing to decode")
        if not torch.isfinite(latents).all():
            raise ValueError("latents contain NaN or infinite values")
        single = latents.dim() == 2
        audio = self.synthesize(latents[None] if single else latents, chunk_frames)
        return audio[0] if single else audio

    @torch.no_grad()
    def reconstruct(
        self,
        audio: AudioInput,
        attention_mask: torch.Tensor | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode then decode, returning audio at the input's rate and length."""
        waves, kind, lengths = self._as_waves(audio, attention_mask, sample_rate)
        outputs = []
        for z, n in zip(self.embed(waves), lengths):
            outputs.append(
                restore_rate_and_length(self.decode(z), self.sample_rate, sample_rate, n)
            )
        if kind == "single":
            return outputs[0]
        if kind == "list":
            return outputs
        width = torch.as_tensor(audio).shape[-1]
        return torch.stack([torch.nn.functional.pad(y, (0, width - y.shape[-1])) for y in outputs])

    @torch.no_grad()
    def forward(self, audio: AudioInput, attention_mask: torch.Tensor | None = None) -> dict:
        """The reference model's forward: {"embeddings": encode(audio), "audio": decode of them}
        (16 kHz, T · 640 samples)."""
        latents = self.encode(audio, attention_mask)
        return {"embeddings": latents, "audio": self.decode(latents)}

    # ---- checkpoints ------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """config.json + model.safetensors in sonotok's layout (atomic writes)."""
        write_pretrained(folder, self.config.to_dict(), self.state_dict())

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        compute_dtype: torch.dtype | str | None = None,
    ) -> AudioTokenizer:
        """Load a tokenizer strictly: a hub id (default family: mispeech/dashengtokenizer),
        a downloaded official folder, or a folder written by `save_pretrained`."""
        folder = resolve(name_or_path, allow_patterns=["config.json", "*.safetensors"])
        values = read_config(folder)
        config = TokenizerConfig.from_dict(values)
        state = read_weights(folder)
        if values.get("model_type") == OFFICIAL_MODEL_TYPE:
            state = rename_keys(state, OFFICIAL_TOKENIZER_KEYS)
        model = cls.from_state_dict(config, state, str(name_or_path))
        model.set_compute_dtype(compute_dtype)
        return model.to(device or "cpu").eval()

    @classmethod
    def from_state_dict(
        cls, config: TokenizerConfig, state: dict[str, torch.Tensor], source: str
    ) -> AudioTokenizer:
        """Build without random initialisation (meta device) and load `state` strictly."""
        with torch.device("meta"):
            model = cls(config)
        model.to_empty(device="cpu")
        model.reset_derived_buffers()
        load_strict(model, state, source)
        return model.eval()

    def reset_derived_buffers(self) -> None:
        """Recompute the non-persistent front-end tables (after building on the meta device)."""
        for module in self.modules():
            if hasattr(module, "init_derived_buffers"):
                module.init_derived_buffers()

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
