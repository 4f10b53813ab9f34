"""Audio embedders for distribution metrics, and the per-file embedding cache.

An embedder turns one mono wave at its own ``sample_rate`` into
``{"embedding": (N, D) rows, ["logits": (C,)]}``; the Fréchet distance is fitted to all rows of
a set (VGGish gives one row per 0.96 s frame, the others one row per clip).

Built in (``EMBEDDERS``): ``vggish`` (FAD), ``panns`` (CNN14 FD and tag logits for KL),
``clap`` (LAION CLAP through transformers), ``laion_clap`` (the laion-clap package) and
``sonotok`` (mean-pooled semantic latents of an AudioTokenizer; fully offline).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from sonotok.core.audio import atomic_path
from sonotok.core.errors import SonotokError

from .data import Item


class EmbedderUnavailableError(SonotokError, RuntimeError):
    """An embedder's weights or package cannot be loaded; the message says how to get them."""


class Embedder(Protocol):
    name: str  # metric suffix, e.g. "vggish" -> "fd_vggish"
    sample_rate: int  # rate the embedder reads audio at
    cache_id: str  # identifies the weights; part of the cache key

    def embed(self, wave: torch.Tensor) -> dict[str, np.ndarray]: ...


def download_weights(url: str, file_name: str, what: str, option: str) -> dict:
    """Fetch a state dict with torch.hub's cache (``$TORCH_HOME/hub/checkpoints``), loading it
    with ``weights_only=True``; offline, raise a message naming the file and the CLI option."""
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", file_name=file_name, progress=False, weights_only=True
        )
    except Exception as err:  # urllib / http errors differ by platform; all mean "not fetched"
        raise EmbedderUnavailableError(
            f"cannot download the {what} weights {file_name} ({type(err).__name__}: {err}); "
            f"without network, fetch {url} on another machine and pass {option} PATH"
        ) from None


def load_local_weights(path: str | os.PathLike, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EmbedderUnavailableError(f"{path}: no such {what} weights file; check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise EmbedderUnavailableError(
            f"{path}: cannot be read as {what} weights ({err}); pass the original .pth file"
        ) from None


class SonotokEmbedder:
    """Mean over time of an AudioTokenizer's semantic latents (``encode(features="semantic")``).

    Works offline with any local tokenizer folder (or an in-memory model for tests).
    """

    name = "sonotok"

    def __init__(self, tokenizer, cache_id: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.sample_rate = int(tokenizer.sample_rate)
        self.cache_id = cache_id or f"sonotok-{_model_digest(tokenizer)}"

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, **hub) -> SonotokEmbedder:
        """A tokenizer folder or hub id; None: the default tokenizer (official if cached,
        else the bundled sonotok-mini one), named on stderr. hub: revision, cache_dir, token,
        local_files_only (`sonotok.core.hub.resolve`)."""
        from sonotok.defaults import model_or_default
        from sonotok.tokenizer.interface import load_tokenizer

        return cls(load_tokenizer(model_or_default(name_or_path, "tokenizer"), **hub))

    @torch.no_grad()
    def embed(self, wave: torch.Tensor) -> dict[str, np.ndarray]:
        # A family's semantic features where it has them (the DashengTokenizer), else its latents.
        names = self.tokenizer.feature_names
        features = "semantic" if "semantic" in names else names[0]
        z = self.tokenizer.encode(wave, sample_rate=self.sample_rate, features=features)
        return {"embedding": z.float().mean(dim=0, keepdim=True).cpu().numpy()}


def _model_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for key, tensor in model.state_dict().items():
        t = tensor.detach().float()
        h.update(f"{key}{tuple(t.shape)}{t.sum().item():.6e}{t.abs().sum().item():.6e}".encode())
    return h.hexdigest()[:16]


class EmbeddingCache:
    """Per-file cache of embedder outputs: ``folder/<cache_id>/<sha256 of the audio>.npz``.

    Arrays only (loaded with ``allow_pickle=False``); written atomically. ``folder=None``
    disables caching.
    """

    def __init__(self, folder: str | os.PathLike | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.hits = 0
        self.misses = 0

    def get(self, embedder: Embedder, digest: str, compute: Callable[[], dict]) -> dict:
        """The cached output for audio with content hash ``digest``, else ``compute()``."""
        if self.folder is None:
            self.misses += 1
            return compute()
        target = self.folder / _safe(embedder.cache_id) / f"{digest}.npz"
        if target.is_file():
            with np.load(target, allow_pickle=False) as data:
                self.hits += 1
                return {k: data[k] for k in data.files}
        value = compute()
        tmp = atomic_path(target)
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **value)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.misses += 1
        return value


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sonotok" / "embeddings"


def embed_item(embedder: Embedder, item: Item, cache: EmbeddingCache) -> dict:
    """Embed one item's audio at the embedder's rate, through the cache."""
    return cache.get(
        embedder, item.digest(), lambda: embedder.embed(item.load(embedder.sample_rate))
    )


def build_embedder(name: str, **options) -> Embedder:
    """Construct a built-in embedder by name.

    Options: ``model`` (sonotok tokenizer path or hub id), ``vggish_weights``,
    ``panns_weights``, ``panns_variant`` ("16k" or "32k"), ``clap_model`` (hub id or folder),
    ``laion_clap_checkpoint``.
    """
    if name == "sonotok":
        model = options.get("model")  # None: the default tokenizer, available offline
        if isinstance(model, torch.nn.Module):
            return SonotokEmbedder(model)
        return SonotokEmbedder.from_pretrained(None if model is None else str(model))
    if name == "vggish":
        from .vggish import VGGishEmbedder

        return VGGishEmbedder.from_pretrained(options.get("vggish_weights"))
    if name == "panns":
        from .panns import PANNsEmbedder

        return PANNsEmbedder.from_pretrained(
            options.get("panns_weights"), variant=options.get("panns_variant") or "16k"
        )
    if name == "clap":
        from .clap import ClapEmbedder

        return ClapEmbedder.from_pretrained(options.get("clap_model"))
    if name == "laion_clap":
        from .clap import LaionClapEmbedder

        return LaionClapEmbedder.from_checkpoint(options.get("laion_clap_checkpoint"))
    raise EmbedderUnavailableError(f"unknown embedder {name!r}; choose from {', '.join(EMBEDDERS)}")


EMBEDDERS = ("vggish", "panns", "clap", "laion_clap", "sonotok")
