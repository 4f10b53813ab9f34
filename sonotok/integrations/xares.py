"""The tokenizer as an X-ARES audio encoder (github jimbozhang/xares).

X-ARES loads the one attribute whose name ends in "Encoder" from a Python file and
calls it with no arguments, so a file holding just

    from sonotok.integrations.xares import SonotokEncoder

is a complete X-ARES encoder; pick the model and features with the environment
variables SONOTOK_MODEL (hub id or folder; unset: DEFAULT_MODEL if it is in the local
Hugging Face cache, else the bundled sonotok-mini tokenizer) and SONOTOK_FEATURES (fused,
semantic, acoustic), or subclass it with other defaults.
"""

from __future__ import annotations

import inspect
import os

import torch
from torch import nn

DEFAULT_MODEL = "mispeech/dashengtokenizer"


class SonotokEncoder(nn.Module):
    """audio (B, N) at 16 kHz → latents (B, T, D) at 25 Hz, T = (1 + N // 160) // 4.

    Inputs of any length (X-ARES sends up to 10 minutes) are encoded a bounded number
    of 10.08 s semantic chunks at a time (`chunks_per_pass`), so memory does not grow
    with the clip and the result equals one pass. The model stays frozen.
    """

    sampling_rate = 16000
    hop_size_in_ms = 40.0  # 640 samples per latent frame at 16 kHz

    def __init__(
        self,
        model=None,
        features: str | None = None,
        device: str | torch.device | None = None,
        compute_dtype: str | None = None,
        chunks_per_pass: int = 16,
    ):
        super().__init__()
        from sonotok.tokenizer.interface import Tokenizer, load_tokenizer

        if model is None:  # SONOTOK_MODEL, else the default: official if cached, else bundled
            from sonotok.defaults import model_or_default

            model = model_or_default(os.environ.get("SONOTOK_MODEL") or None, "tokenizer")
        if not isinstance(model, Tokenizer):
            from sonotok.core.options import resolve_device

            device = resolve_device(device or "auto")
            model = load_tokenizer(
                model,
                device=device,
                compute_dtype=compute_dtype or os.environ.get("SONOTOK_DTYPE"),
            )
        self.tokenizer = model.eval().requires_grad_(False)
        names = model.feature_names
        self.features = features or os.environ.get("SONOTOK_FEATURES") or names[0]
        if self.features not in names:
            raise ValueError(
                f"features={self.features!r}; this tokenizer has {', '.join(names)} "
                "(argument or SONOTOK_FEATURES)"
            )
        # A memory bound for families that take one (the DashengTokenizer's encoder chunks).
        accepts = inspect.signature(model.encode_waves).parameters
        self.options = {"chunks_per_pass": chunks_per_pass} if "chunks_per_pass" in accepts else {}
        self.output_dim = model.latent_dim
        self.sampling_rate = model.sample_rate
        self.hop_size_in_ms = 1000.0 * model.hop_samples / model.sample_rate

    @torch.inference_mode()
    def forward(
        self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """audio (B, N) or (N,) float at 16 kHz → (B, T, D) on the input's device."""
        audio = torch.as_tensor(audio)
        if audio.dim() == 1:
            audio = audio[None]
        out = self.tokenizer.encode(
            audio.float(),
            attention_mask=audio_attention_mask,
            features=self.features,
            **self.options,
        )
        return out.to(audio.device)
