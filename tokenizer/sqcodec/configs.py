"""SQCodec's configuration as typed data, and the seven official configurations.

Field names follow the reference's `sq_codec/configs/<name>.toml` `[network_config]` except
where noted: `levels` is the toml's `vq_config.codebook_dim` (the FSQ levels),
`transformer_depth` / `transformer_window` / `transformer_compress` / `transformer_cache` are
`en_coder_depth` / `en_coder_window_size` / `en_coder_compress_rate` / `en_coder_cache_size`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from sonotok.core.errors import ConfigError

__all__ = ["OFFICIAL_CONFIGS", "SQCodecConfig", "official_config"]


@dataclasses.dataclass(frozen=True)
class SQCodecConfig:
    """One SQCodec architecture. Frames per second = sample_rate / hop_length."""

    name: str = "6kbps"
    sample_rate: int = 16000
    feature_dim: int = 256
    compress_rates: tuple[int, ...] = (9, 5)
    encoder_dims: tuple[int, ...] = (24, 96, 192)
    encoder_depths: tuple[int, ...] = (1, 1, 2)
    decode_rates: tuple[int, ...] = (5, 3, 3)
    decoder_dims: tuple[int, ...] = (384, 192, 96, 48)
    decoder_depths: tuple[int, ...] = (3, 2, 1, 1)
    use_norm: bool = True
    use_snake: bool = True
    decoder_last_layer: Literal["legacy", "dilation", "none"] = "legacy"
    levels: tuple[int, ...] = (7, 7, 7, 7, 7, 7)
    transformer_depth: int = 3
    transformer_window: int = 300
    transformer_compress: int = 1
    transformer_cache: int = 0

    def __post_init__(self) -> None:
        where = f"SQCodec config {self.name!r}"
        if len(self.compress_rates) + 1 != len(self.encoder_dims) or len(self.encoder_dims) != len(
            self.encoder_depths
        ):
            raise ConfigError(f"{where}: encoder_dims/depths need len(compress_rates) + 1 entries")
        if len(self.decode_rates) + 1 != len(self.decoder_dims) or len(self.decoder_dims) != len(
            self.decoder_depths
        ):
            raise ConfigError(f"{where}: decoder_dims/depths need len(decode_rates) + 1 entries")
        if math.prod(self.decode_rates) != math.prod(self.compress_rates):
            raise ConfigError(
                f"{where}: decode_rates multiply to {math.prod(self.decode_rates)} but "
                f"compress_rates to {math.prod(self.compress_rates)}; they must match"
            )
        if self.feature_dim % 4:
            raise ConfigError(f"{where}: feature_dim must be a multiple of 4 (heads of dim/4)")
        if self.transformer_cache != 0:
            raise ConfigError(
                f"{where}: transformer_cache={self.transformer_cache}; only 0 (every official "
                "config) is supported"
            )
        if self.transformer_compress > 1 and self.transformer_depth < 3:
            raise ConfigError(f"{where}: a compressing transformer needs transformer_depth >= 3")
        if any(level < 3 for level in self.levels):
            raise ConfigError(f"{where}: FSQ levels must be >= 3, got {list(self.levels)}")

    @property
    def conv_hop(self) -> int:
        """Samples per frame of the convolutional encoder (before the transformer)."""
        return math.prod(self.compress_rates)

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        return self.conv_hop * self.transformer_compress

    @property
    def fill_length(self) -> int:
        """The reference pads every input with zeros to a multiple of this (hop × window)."""
        return self.hop_length * self.transformer_window

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    @property
    def bitrate(self) -> float:
        return self.frame_rate * math.log2(self.codebook_size)

    def replace(self, **changes) -> SQCodecConfig:
        return dataclasses.replace(self, **changes)


_L7 = (7, 7, 7, 7, 7, 7)  # 117,649 codes (toml vq_config.codebook_dim)
_L9 = (9, 9, 9, 7, 7, 7)  # 250,047 codes
_SMALL = dict(  # the 16 kHz configs at 0.75-3 kbps share these widths
    encoder_dims=(24, 48, 96, 192),
    encoder_depths=(1, 1, 1, 2),
    decoder_dims=(384, 192, 96, 48, 24),
    decoder_depths=(3, 2, 2, 1, 1),
)

#: The seven configurations of sq_codec/configs/*.toml (PyPI sq-codec 0.0.1). The toml of
#: 12kbps_24khz says sample_rate = 16000, but its hop (36) and the release table's 666.67
#: tokens/s belong to 24 kHz, which we use.
OFFICIAL_CONFIGS: dict[str, SQCodecConfig] = {
    "0k75bps": SQCodecConfig(
        name="0k75bps",
        compress_rates=(6, 5, 4),
        decode_rates=(5, 4, 3, 2),
        levels=_L7,
        transformer_depth=5,
        transformer_window=200,
        transformer_compress=3,
        **_SMALL,
    ),
    "1k5bps": SQCodecConfig(
        name="1k5bps",
        compress_rates=(6, 5, 3),
        decode_rates=(5, 3, 3, 2),
        levels=_L7,
        transformer_depth=5,
        transformer_window=300,
        transformer_compress=2,
        **_SMALL,
    ),
    "3kbps": SQCodecConfig(
        name="3kbps",
        compress_rates=(6, 5, 3),
        decode_rates=(5, 3, 3, 2),
        levels=_L7,
        transformer_depth=3,
        transformer_window=400,
        **_SMALL,
    ),
    "6kbps": SQCodecConfig(name="6kbps", levels=_L7),
    "12kbps": SQCodecConfig(
        name="12kbps",
        compress_rates=(6, 4),
        decode_rates=(4, 3, 2),
        levels=_L9,
        transformer_window=400,
    ),
    "12kbps_24khz": SQCodecConfig(
        name="12kbps_24khz",
        sample_rate=24000,
        compress_rates=(6, 6),
        decode_rates=(4, 3, 3),
        levels=_L9,
        transformer_window=400,
    ),
    "24kbps_24khz": SQCodecConfig(
        name="24kbps_24khz",
        sample_rate=24000,
        compress_rates=(6, 3),
        decode_rates=(3, 3, 2),
        levels=_L9,
        transformer_window=600,
    ),
}


#: toml `[network_config]` key → our field (keys not listed are the same; `base_unit`,
#: `hop_length` and `vq_config.name` / `codebook_num` are checked, not stored).
_TOML_KEYS = {
    "use_snake_act": "use_snake",
    "en_coder_depth": "transformer_depth",
    "en_coder_window_size": "transformer_window",
    "en_coder_compress_rate": "transformer_compress",
    "en_coder_cache_size": "transformer_cache",
}


def config_from_toml(network: dict, name: str, sample_rate: int) -> SQCodecConfig:
    """Our config from a reference toml's `[network_config]` table (as a dict)."""
    network = dict(network)
    vq = network.pop("vq_config", {})
    if vq.get("name", "taae_fsq") != "taae_fsq" or vq.get("codebook_num", 1) != 1:
        raise ConfigError(f"SQCodec config {name!r}: only one FSQ quantizer is supported, got {vq}")
    if network.pop("base_unit", "normal") != "normal":
        raise ConfigError(f"SQCodec config {name!r}: only base_unit 'normal' is supported")
    if not network.pop("en_coder_dynamic_pos", True):
        raise ConfigError(f"SQCodec config {name!r}: only en_coder_dynamic_pos = true is supported")
    network.pop("hop_length", None)
    values = {_TOML_KEYS.get(k, k): v for k, v in network.items()}
    values["decoder_last_layer"] = values.get("decoder_last_layer") or "none"
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    fields = {f.name for f in dataclasses.fields(SQCodecConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"SQCodec config {name!r}: unknown network_config keys {unknown}")
    return SQCodecConfig(
        name=name, sample_rate=sample_rate, levels=tuple(vq["codebook_dim"]), **values
    )


def official_config(name: str) -> SQCodecConfig:
    """The official config called `name` (e.g. "6kbps"); an unknown name is a ConfigError."""
    if name not in OFFICIAL_CONFIGS:
        raise ConfigError(
            f"SQCodec has no config {name!r}; choose one of {sorted(OFFICIAL_CONFIGS)}"
        )
    return OFFICIAL_CONFIGS[name]
