"""Adapters that put other libraries' audio codecs on the `Tokenizer` interface.

Importing this package registers the families (`encodec`, `dac`, `mimi`, `xcodec`,
`wavtokenizer`, `xcodec2`, `neucodec` from `transformers`;
`AutoencoderOobleck` from `diffusers`) without importing either library: each adapter imports
its library when a model is built or loaded, so `import sonotok.tokenizer` stays light.
"""

from .diffusers_vae import OobleckTokenizer
from .transformers_codecs import DacTokenizer, EncodecTokenizer, MimiTokenizer
from .transformers_codecs_extra import WavTokenizerTokenizer, XcodecTokenizer
from .transformers_codecs_xcodec2 import NeuCodecTokenizer, Xcodec2Tokenizer

__all__ = [
    "DacTokenizer",
    "EncodecTokenizer",
    "MimiTokenizer",
    "NeuCodecTokenizer",
    "OobleckTokenizer",
    "WavTokenizerTokenizer",
    "Xcodec2Tokenizer",
    "XcodecTokenizer",
]
