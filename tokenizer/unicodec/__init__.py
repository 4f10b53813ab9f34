"""UniCodec: one 16,384-code domain-partitioned SimVQ codebook for speech, music and sound."""

from .configs import DOMAINS, UnicodecConfig
from .family import UnicodecTokenizer

__all__ = ["DOMAINS", "UnicodecConfig", "UnicodecTokenizer"]
