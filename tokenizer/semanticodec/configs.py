"""Every official SemantiCodec configuration, and the config dataclass of the family.

A configuration is a token rate (25, 50 or 100 tokens per second, counting the semantic and the
acoustic token of each frame) and a semantic vocabulary (4096 … 32768, as the paper and the
reference name them). From `semanticodec/config.py` of haoheliu/SemantiCodec-inference:

| token rate | frames/s | AudioMAE patches merged | feature dim | LSTM layers | centroid folder |
|---|---|---|---|---|---|
| 100 | 50   | 1 (one 16×16 patch)   | 768  | 4 | combine_512_audioset_dominate |
| 50  | 25   | 2 (1 time × 2 freq)   | 1536 | 3 | combine_256_audioset_dominate |
| 25  | 12.5 | 4 (2 time × 2 freq)   | 3072 | 2 | combine_128_audioset_dominate |

The centroid file of vocabulary V is `codebook_{V/2}_0.npy` (as the reference maps them); the
acoustic quantiser always has 8192 codes. The paper's bitrates (0.31–1.40 kbps) are
frames/s × (log2 V + log2 8192), e.g. 50 × (15 + 13) = 1400 bps for 100 tokens/s, V = 32768.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from sonotok.core.config import dataclass_from_dict
from sonotok.core.errors import ConfigError

from .decoder_config import DecoderConfig

__all__ = [
    "OFFICIAL_CONFIGS",
    "SEGMENT_SAMPLES",
    "SemantiCodecConfig",
    "centroid_file",
    "checkpoint_folder",
    "config_name",
    "parse_config_name",
]

SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 163840  # 10.24 s: the AudioMAE input (1024 fbank frames)
SEGMENT_FRAMES = 1024
PATCH_SAMPLES = 2560  # 0.16 s: one AudioMAE patch column (16 fbank frames)
TOKEN_RATES = (25, 50, 100)
VOCABULARIES = (4096, 8192, 16384, 32768)
ACOUSTIC_CODEBOOK_SIZE = 8192  # AudioMAEConditionQuantResEncoder's default codebook_size
AUDIOMAE_DIM = 768  # AudioMAE ViT-B/16 width
#: token rate → (patches merged per token, LSTM layers) from the reference's get_config
_RATE_TABLE = {100: (1, 4), 50: (2, 3), 25: (4, 2)}


def checkpoint_folder(token_rate: int) -> str:
    """The hub repo folder holding encoder.ckpt / decoder.ckpt of a token rate."""
    return f"semanticodec_tokenrate_{token_rate}"


def centroid_file(token_rate: int, vocab: int) -> str:
    """The hub repo path of the semantic k-means centroids (the reference's naming)."""
    merged = _RATE_TABLE[token_rate][0]
    return f"codebook_idx/combine_{512 // merged}_audioset_dominate/codebook_{vocab // 2}_0.npy"


@dataclass
class SemantiCodecConfig:
    """One SemantiCodec model. `semantic_vocab_size` is the paper's name for the configuration
    (bitrate); `num_centroids` is the row count of the centroid file actually loaded (the
    semantic codebook size, 0 = not known yet). Widths other than the official ones (768-wide
    AudioMAE, 12 blocks) exist for tests and training from scratch."""

    token_rate: int = 100
    semantic_vocab_size: int = 16384
    num_centroids: int = 0
    acoustic_codebook_size: int = ACOUSTIC_CODEBOOK_SIZE
    embed_dim: int = AUDIOMAE_DIM
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    contextual_depth: int = 8  # features = mean of the normed outputs of blocks > this index
    lstm_layers: int = 4
    #: the latent diffusion decoder's config (tokenizer/semanticodec/decoder_config.py), or
    #: None for an encoder-only model
    decoder: DecoderConfig | None = field(default=None)

    def __post_init__(self) -> None:
        if self.token_rate not in TOKEN_RATES:
            raise ConfigError(f"token_rate={self.token_rate}; SemantiCodec has {list(TOKEN_RATES)}")
        if self.semantic_vocab_size < 2:
            raise ConfigError(f"semantic_vocab_size={self.semantic_vocab_size}; must be ≥ 2")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}"
            )
        if not 0 <= self.contextual_depth < self.depth - 1:
            raise ConfigError(
                f"contextual_depth={self.contextual_depth} leaves no AudioMAE block to average "
                f"(depth={self.depth}); use 0 … {self.depth - 2}"
            )

    # ---- derived facts ---------------------------------------------------------------------
    @property
    def merge(self) -> int:
        """AudioMAE patches merged into one token (1, 2 or 4)."""
        return _RATE_TABLE[self.token_rate][0]

    @property
    def feature_dim(self) -> int:
        """Width of one semantic (and one acoustic) feature: embed_dim × merge."""
        return self.embed_dim * self.merge

    @property
    def tokens_per_segment(self) -> int:
        """Frames per 10.24 s segment: 512 patches / merge."""
        return 512 // self.merge

    @property
    def frame_rate(self) -> float:
        return self.tokens_per_segment * SAMPLE_RATE / SEGMENT_SAMPLES

    @property
    def name(self) -> str:
        return config_name(self.token_rate, self.semantic_vocab_size)

    @classmethod
    def official(cls, token_rate: int, vocab: int, **overrides) -> SemantiCodecConfig:
        """The released configuration (full widths) for a token rate and vocabulary."""
        if vocab not in VOCABULARIES:
            raise ConfigError(
                f"semantic vocabulary {vocab}: the official models have {list(VOCABULARIES)}"
            )
        if token_rate not in TOKEN_RATES:
            raise ConfigError(f"token rate {token_rate}: the official models have {TOKEN_RATES}")
        values = dict(
            token_rate=token_rate,
            semantic_vocab_size=vocab,
            lstm_layers=_RATE_TABLE[token_rate][1],
        )
        return cls(**{**values, **overrides})

    def to_dict(self) -> dict:
        """JSON-able values (config.json of `save_pretrained`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str) -> SemantiCodecConfig:
        """The config from config.json's values (the decoder's nested); errors name `where`."""
        values = dict(values)
        decoder = values.pop("decoder", None)
        config = dataclass_from_dict(cls, values, where)
        if decoder is not None:
            config.decoder = dataclass_from_dict(DecoderConfig, decoder, f"{where}: decoder")
        return config


#: every released (token rate, vocabulary) pair, by its name
OFFICIAL_CONFIGS = {
    f"{rate}tps-{vocab}": (rate, vocab) for rate in TOKEN_RATES for vocab in VOCABULARIES
}


def config_name(token_rate: int, vocab: int) -> str:
    return f"{token_rate}tps-{vocab}"


_NAME = re.compile(r"(?P<rate>\d+)\s*tps[-_](?P<vocab>\d+)(?P<k>k?)", re.IGNORECASE)


def parse_config_name(text: str) -> tuple[int, int] | None:
    """'100tps-16384' or '100tps-16k' → (100, 16384); None when `text` is not such a name."""
    match = _NAME.fullmatch(text.strip())
    if match is None:
        return None
    vocab = int(match["vocab"]) * (1024 if match["k"] else 1)
    return int(match["rate"]), vocab
