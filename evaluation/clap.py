"""LAION CLAP audio/text embeddings (Wu et al., ICASSP 2023) for FD and CLAP score.

Two backends, both at 48 kHz with 512-d unit-norm embeddings:
- ``clap``: ``transformers.ClapModel`` (default ``laion/clap-htsat-unfused``; any ClapModel hub
  id or a local folder saved with ``save_pretrained``),
- ``laion_clap``: the ``laion-clap`` package with a local checkpoint such as
  ``630k-audioset-best.pt`` (HTSAT-tiny, no fusion). Audio is rounded through int16 first as
  its evaluation code does. The package pins numpy<2, so it usually lives in its own venv.

CLAP score = cosine(text embedding of the caption, audio embedding of the generated clip).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from .embedders import EmbedderUnavailableError, load_local_weights

SAMPLE_RATE = 48000  # both CLAP releases take 48 kHz audio
DEFAULT_MODEL = "laion/clap-htsat-unfused"


def _pooled(output) -> torch.Tensor:
    # transformers < 5 returns the projected features; 5.x a ModelOutput with pooler_output
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(x: torch.Tensor) -> np.ndarray:
    x = x.detach().float()
    return torch.nn.functional.normalize(x, dim=-1).cpu().numpy()


def _clap_folder(name: str, hub: dict):
    """The local folder of a ClapModel: configs, tokenizer files and safetensors weights, or
    pytorch_model.bin when the repository has no safetensors (never both downloaded)."""
    from sonotok.core.errors import ModelNotFoundError
    from sonotok.core.hub import resolve

    try:
        folder = resolve(name, allow_patterns=["*.json", "*.txt", "*.safetensors"], **hub)
        if folder.is_dir() and not any(folder.glob("*.safetensors")):
            folder = resolve(name, allow_patterns=["*.json", "*.txt", "*.bin"], **hub)
    except ModelNotFoundError as err:
        raise EmbedderUnavailableError(
            f"cannot load the CLAP model {name!r}: {err}; without access to the Hugging Face "
            f"hub, download it elsewhere (`hf download {DEFAULT_MODEL}`), copy the folder here "
            "and pass --clap-model FOLDER"
        ) from None
    return folder


class ClapEmbedder:
    """CLAP through ``transformers``: audio rows for FD, text embeddings for CLAP score."""

    name = "clap"
    sample_rate = SAMPLE_RATE

    def __init__(self, model, feature_extractor, tokenizer, cache_id: str) -> None:
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.cache_id = cache_id

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, **hub) -> ClapEmbedder:
        """A ClapModel folder or hub id (default laion/clap-htsat-unfused), found by
        `sonotok.core.hub.resolve` (hub: revision, cache_dir, token, local_files_only)."""
        name = name_or_path or DEFAULT_MODEL
        try:
            from transformers import AutoFeatureExtractor, AutoTokenizer, ClapModel
        except ImportError as err:
            raise EmbedderUnavailableError(
                f"CLAP needs transformers ({err}); pip install 'sonotok[eval]'"
            ) from None
        folder = str(_clap_folder(name, hub))
        try:
            model = ClapModel.from_pretrained(folder)
            feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as err:
            first_line = (
                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            )
            raise EmbedderUnavailableError(
                f"cannot load the CLAP model {name!r} ({first_line}); without access to the "
                f"Hugging Face hub, download it elsewhere (`hf download {DEFAULT_MODEL}`), copy "
                "the folder here and pass --clap-model FOLDER"
            ) from None
        cache_id = f"clap-{os.path.basename(os.path.normpath(str(name)))}"
        return cls(model, feature_extractor, tokenizer, cache_id)

    @torch.no_grad()
    def embed(self, wave: torch.Tensor) -> dict[str, np.ndarray]:
        x = torch.as_tensor(wave, dtype=torch.float32).reshape(-1).numpy()
        inputs = self.feature_extractor(x, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {"embedding": _unit(_pooled(self.model.get_audio_features(**inputs)))}

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) captions -> (N, 512) unit-norm text embeddings."""
        inputs = self.tokenizer(list(texts), padding=True, return_tensors="pt")
        return _unit(_pooled(self.model.get_text_features(**inputs)))


class LaionClapEmbedder:
    """CLAP through the ``laion-clap`` package and a local checkpoint file."""

    name = "laion_clap"
    sample_rate = SAMPLE_RATE

    def __init__(self, module, cache_id: str) -> None:
        self.module = module
        self.cache_id = cache_id

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | None, amodel: str = "HTSAT-tiny"
    ) -> LaionClapEmbedder:
        if not checkpoint:
            raise EmbedderUnavailableError(
                "the laion_clap embedder needs a checkpoint file; download e.g. "
                "630k-audioset-best.pt and pass --laion-clap-checkpoint PATH"
            )
        try:
            import laion_clap
        except ImportError as err:
            raise EmbedderUnavailableError(
                f"laion_clap is not importable ({err}); pip install laion-clap (it pins numpy<2: "
                "use a separate environment) or use the 'clap' embedder"
            ) from None
        state = load_local_weights(checkpoint, "LAION CLAP")
        state = state.get("state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        # Newer transformers no longer register this buffer in CLAP's RoBERTa text branch.
        state.pop("text_branch.embeddings.position_ids", None)
        module = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel)
        module.model.load_state_dict(state, strict=True)
        module.eval()
        return cls(module, f"laion_clap-{os.path.basename(checkpoint)}")

    @torch.no_grad()
    def embed(self, wave: torch.Tensor) -> dict[str, np.ndarray]:
        x = torch.as_tensor(wave, dtype=torch.float32).reshape(1, -1)
        x = (x.clamp(-1, 1) * 32767).round() / 32767  # int16 round trip, as laion-clap's eval
        emb = self.module.get_audio_embedding_from_data(x=x, use_tensor=True)
        return {"embedding": _unit(emb)}

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self.module.get_text_embedding(list(texts), use_tensor=True))
