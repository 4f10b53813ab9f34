"""SemantiCodec (haoheliu/SemantiCodec-inference): ultra-low-bitrate semantic audio codec.

Encoder side: `fbank` (Kaldi fbank), `audiomae` (ViT features), `encoder` (k-means semantic and
LSTM acoustic tokens), `kmeans` (fitting the semantic codebook), `loading` (the official
release). Decoder side: `decoder`, `windows`, `sampling`. `family.SemantiCodec` is the
`Tokenizer` (`load_tokenizer("haoheliu/SemantiCodec:100tps-16384")`); importing this package
is cheap (no diffusers / transformers until a decoder is built).
"""

from .configs import OFFICIAL_CONFIGS, SemantiCodecConfig
from .family import SemantiCodec

__all__ = ["OFFICIAL_CONFIGS", "SemantiCodec", "SemantiCodecConfig"]
