"""sonotok.enhancement: speech enhancement on the tokenizer's latents.

A small Transformer (`LatentDenoiser`) maps noisy latents to clean ones; the
tokenizer's decoder turns them back into audio. `EnhancementPipeline` runs it (or
the official dasheng-denoiser) on recordings of any rate, channel count and length.
"""

from .denoiser import DenoiserConfig, LatentDenoiser, latent_loss
from .official import DashengDenoiser
from .pipeline import EnhancementPipeline, TokenizerDenoiser, save_enhancement

__all__ = [
    "DashengDenoiser",
    "DenoiserConfig",
    "EnhancementPipeline",
    "LatentDenoiser",
    "TokenizerDenoiser",
    "latent_loss",
    "save_enhancement",
]
