"""TokenizerConfig: the three branch configs plus the upsampler, as one JSON-able object."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sonotok.core.config import check_numbers, convert, dataclass_from_dict
from sonotok.core.errors import ConfigError

from .acoustic import AcousticProjectionConfig
from .decoder import VocosDecoderConfig
from .semantic import SemanticEncoderConfig

MODEL_TYPE = "sonotok-tokenizer"
OFFICIAL_MODEL_TYPE = "dashengtokenizer"  # config.json of mispeech/dashengtokenizer


def _check_sizes(config, section: str) -> None:
    """Every integer field of a branch config is a size or a count: it must be >= 1."""
    sizes = [f.name for f in fields(config) if type(getattr(config, f.name)) is int]
    check_numbers(config, section, positive=sizes)


@dataclass
class TokenizerConfig:
    """Everything needed to build an AudioTokenizer (defaults: DashengTokenizer, ~805M params)."""

    semantic: SemanticEncoderConfig = field(default_factory=SemanticEncoderConfig)
    acoustic: AcousticProjectionConfig = field(default_factory=AcousticProjectionConfig)
    decoder: VocosDecoderConfig = field(default_factory=VocosDecoderConfig)
    upsample: int = 2  # ConvTranspose1d 25 Hz → 50 Hz before the decoder (`upsample_tokens`)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        s, a, d = self.semantic, self.acoustic, self.decoder
        _check_sizes(a, "acoustic")
        _check_sizes(d, "decoder")
        check_numbers(self, "", positive=("upsample",))
        if not s.embed_dim == a.embed_dim == d.input_dim:
            raise ConfigError(
                f"latent widths differ: semantic.embed_dim={s.embed_dim}, acoustic.embed_dim={a.embed_dim}, "
                f"decoder.input_dim={d.input_dim}; the branches are summed, so they must be equal"
            )
        hops = {
            "semantic": s.hop_length * s.patch_frames,
            "acoustic": a.hop_length * a.patch_frames,
            "decoder": d.hop_length * self.upsample,
        }
        if len(set(hops.values())) != 1:
            raise ConfigError(
                f"samples per latent frame differ between branches: {hops}; they must agree"
            )
        if s.sample_rate != a.sample_rate:
            raise ConfigError(
                f"sample rates differ: semantic {s.sample_rate}, acoustic {a.sample_rate}"
            )

    @property
    def hop_samples(self) -> int:
        return self.semantic.hop_length * self.semantic.patch_frames

    @property
    def sample_rate(self) -> int:
        return self.semantic.sample_rate

    def to_dict(self) -> dict:
        return {
            "model_type": MODEL_TYPE,
            "semantic": self.semantic.to_dict(),
            "acoustic": self.acoustic.to_dict(),
            "decoder": self.decoder.to_dict(),
            "upsample": self.upsample,
        }

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TokenizerConfig:
        """Our own config.json, or the official DashengTokenizer one (by its model_type).

        Keys and value types are checked (sonotok.core.config); errors name `source`."""
        if not isinstance(values, dict):
            return dataclass_from_dict(cls, values, source)  # raises, naming the type
        values = dict(values)
        model_type = values.pop("model_type", MODEL_TYPE)
        if model_type == OFFICIAL_MODEL_TYPE:
            return cls.from_official(values, source)
        if model_type != MODEL_TYPE:
            raise ConfigError(
                f"{source}: model_type {model_type!r} is not a tokenizer; "
                f"expected {MODEL_TYPE!r} or {OFFICIAL_MODEL_TYPE!r}"
            )
        return dataclass_from_dict(cls, values, source)

    @classmethod
    def from_official(cls, values: dict, source: str = "config") -> TokenizerConfig:
        """Map mispeech/dashengtokenizer's flat config.json onto our nested one."""

        def get(key: str, default: int) -> int:
            return convert(values.get(key, default), int, f"{source}: {key}")

        dim = get("embed_dim", 1280)
        try:
            return cls(
                semantic=SemanticEncoderConfig(
                    embed_dim=dim, depth=get("depth", 32), num_heads=get("num_heads", 16)
                ),
                acoustic=AcousticProjectionConfig(
                    embed_dim=dim,
                    n_mels=get("n_mels_patch", 128),
                    hop_length=get("hop_length", 160),
                ),
                decoder=VocosDecoderConfig(
                    input_dim=dim,
                    dim=get("decoder_embed_dim", 1280),
                    intermediate_dim=get("decoder_intermediate_size", 5120),
                    num_layers=get("decoder_depth", 12),
                    n_fft=get("istft_n_fft", 1280),
                    hop_length=get("istft_hop", 320),
                ),
                upsample=get("upsample_tokens", 2),
            )
        except ConfigError as err:
            message = str(err)
            raise ConfigError(
                message if message.startswith(source) else f"{source}: {message}"
            ) from None

    @classmethod
    def tiny(cls) -> TokenizerConfig:
        """A few-hundred-thousand-parameter model with the real front ends and frame rates, for tests."""
        dim = 32
        return cls(
            semantic=SemanticEncoderConfig(embed_dim=dim, depth=2, num_heads=2),
            acoustic=AcousticProjectionConfig(embed_dim=dim),
            decoder=VocosDecoderConfig(input_dim=dim, dim=dim, intermediate_dim=64, num_layers=2),
        )
