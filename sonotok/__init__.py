"""sonotok: a unified continuous audio tokenizer and the heads that run on its latents.

from sonotok import AudioTokenizer
tok = AudioTokenizer.from_pretrained("mispeech/dashengtokenizer")
latents = tok.encode(wave, sample_rate=sr)  # (T, 1280) at 25 Hz
"""

from sonotok.tokenizer import (
    AudioInputError,
    AudioTokenizer,
    TokenizerConfig,
    load_audio,
    write_audio,
)

__version__ = "0.1.0"
__all__ = [
    "AudioInputError",
    "AudioTokenizer",
    "TokenizerConfig",
    "__version__",
    "load_audio",
    "write_audio",
]
