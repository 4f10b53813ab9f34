"""UniCodec's configuration: one dataclass whose fields are the model's constructor arguments.

Defaults are the released model (`configs/unicodec_frame75_10s_nq1_code16384_dim512_*.yaml` and
the hard-coded `_transformer_kwargs` / `ModelArgs` of the official `Jiang-Yidi/UniCodec` code):
24 kHz audio, hop 8·5·4·2 = 320 (75 frames/s), one SimVQ codebook of 16,384 codes of width 512
partitioned speech / music / sound, a Vocos decoder of width 768 with an ISTFT head.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sonotok.core.errors import ConfigError

#: The domains UniCodec knows, in the order of their codebook partitions (`simvq_moe.py`: the
#: reference's domain ids "0", "1", "2").
DOMAINS = ("speech", "music", "sound")


@dataclass
class UnicodecConfig:
    sample_rate: int = 24000
    # SEANet encoder (`EncodecFeatures` in decoder/feature_extractors.py)
    n_filters: int = 32
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # decoder order; the encoder downsamples 2, 4, 5, 8
    dimension: int = 512
    n_residual_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    # the encoder's Transformer (`_transformer_kwargs` in encoder/modules/seanet.py)
    transformer_layers: int = 8
    transformer_heads: int = 8
    layer_scale: float = 0.01
    rope_max_period: float = 10000.0
    # its mixture-of-experts feed-forward (`ModelArgs` in encoder/modules/mimi_transformer.py)
    moe_experts: int = 3  # routed experts, top-1
    moe_hidden: int = 2048  # per expert; the shared expert has the same width
    # SimVQ codebook (`SimVQ1D` in encoder/quantization/simvq_moe.py): a quarter per domain for
    # speech and music, the remaining half for sound
    codebook_size: int = 16384
    # Vocos decoder (`VocosBackbone` + `ISTFTHead` in the yaml)
    decoder_dim: int = 768
    decoder_intermediate_dim: int = 2304
    decoder_layers: int = 12
    adanorm_num_embeddings: int = 4  # one per "bandwidth" in the yaml; inference uses id 0
    n_fft: int = 1280
    hop_length: int = 320

    def __post_init__(self) -> None:
        self.ratios = tuple(int(r) for r in self.ratios)
        if math.prod(self.ratios) != self.hop_length:
            raise ConfigError(
                f"ratios {list(self.ratios)} multiply to {math.prod(self.ratios)}, but hop_length "
                f"is {self.hop_length}; they must agree (the decoder's frames are the encoder's)"
            )
        if self.codebook_size % 4:
            raise ConfigError(f"codebook_size {self.codebook_size} must be a multiple of 4")
        if (
            self.dimension % self.transformer_heads
            or (self.dimension // self.transformer_heads) % 2
        ):
            raise ConfigError(
                f"dimension {self.dimension} must split into {self.transformer_heads} heads of "
                "even width (rotary embeddings)"
            )
        if self.decoder_dim % 32:
            raise ConfigError(
                f"decoder_dim {self.decoder_dim} must be a multiple of 32 (GroupNorm)"
            )

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def partition(self, domain: str) -> tuple[int, int]:
        """[start, stop) of the codes `domain` may use."""
        quarter = self.codebook_size // 4
        return {
            "speech": (0, quarter),
            "music": (quarter, 2 * quarter),
            "sound": (2 * quarter, self.codebook_size),
        }[domain]

    def to_dict(self) -> dict:
        values = asdict(self)
        values["ratios"] = list(self.ratios)
        return values
