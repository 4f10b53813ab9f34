"""sonotok.tokenizer.mae: masked-autoencoder pretraining of the semantic encoder (Dasheng's
recipe), so users can build the frozen semantic branch for their own audio domain."""

from .loss import mae_loss, patchify
from .masking import random_masking
from .model import MAEConfig, MAEDecoder, MaskedAutoencoder

__all__ = ["MAEConfig", "MAEDecoder", "MaskedAutoencoder", "mae_loss", "patchify", "random_masking"]
