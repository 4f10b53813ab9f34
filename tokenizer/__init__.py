"""sonotok.tokenizer: audio I/O, mel front ends, the semantic encoder, the acoustic
projection, the Vocos decoder and the AudioTokenizer that joins them."""

from sonotok.core.audio import SAMPLE_RATE, AudioInputError, load_audio, write_audio
from sonotok.core.errors import CheckpointError, ModelNotFoundError

from .acoustic import AcousticProjection, AcousticProjectionConfig
from .config import ConfigError, TokenizerConfig
from .decoder import VocosDecoder, VocosDecoderConfig
from .mel import MelSpectrogram
from .model import AudioTokenizer, num_latent_frames
from .semantic import SemanticEncoder, SemanticEncoderConfig

__all__ = [
    "SAMPLE_RATE",
    "AcousticProjection",
    "AcousticProjectionConfig",
    "AudioInputError",
    "AudioTokenizer",
    "CheckpointError",
    "ConfigError",
    "MelSpectrogram",
    "ModelNotFoundError",
    "SemanticEncoder",
    "SemanticEncoderConfig",
    "TokenizerConfig",
    "VocosDecoder",
    "VocosDecoderConfig",
    "load_audio",
    "num_latent_frames",
    "write_audio",
]
