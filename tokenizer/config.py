"""TokenizerConfig: the three branch configs plus the upsampler, as one JSON-able object."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .acoustic import AcousticProjectionConfig
from .decoder import VocosDecoderConfig
from .semantic import SemanticEncoderConfig

MODEL_TYPE = "sonotok-tokenizer"
OFFICIAL_MODEL_TYPE = "dashengtokenizer"  # config.json of mispeech/dashengtokenizer


class ConfigError(ValueError):
    """A model configuration that cannot describe a working tokenizer."""


def _build(cls, values: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys are {sorted(known)}")
    return cls(**values)


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
    def from_dict(cls, values: dict) -> TokenizerConfig:
        """Our own config.json, or the official DashengTokenizer one (by its model_type)."""
        values = dict(values)
        model_type = values.pop("model_type", MODEL_TYPE)
        if model_type == OFFICIAL_MODEL_TYPE:
            return cls.from_official(values)
        if model_type != MODEL_TYPE:
            raise ConfigError(
                f"config model_type {model_type!r} is not a tokenizer; expected {MODEL_TYPE!r} or {OFFICIAL_MODEL_TYPE!r}"
            )
        return cls(
            semantic=_build(SemanticEncoderConfig, values.pop("semantic", {}), "semantic"),
            acoustic=_build(AcousticProjectionConfig, values.pop("acoustic", {}), "acoustic"),
            decoder=_build(VocosDecoderConfig, values.pop("decoder", {}), "decoder"),
            **values,
        )

    @classmethod
    def from_official(cls, values: dict) -> TokenizerConfig:
        """Map mispeech/dashengtokenizer's flat config.json onto our nested one."""
        dim = values.get("embed_dim", 1280)
        return cls(
            semantic=SemanticEncoderConfig(
                embed_dim=dim, depth=values.get("depth", 32), num_heads=values.get("num_heads", 16)
            ),
            acoustic=AcousticProjectionConfig(
                embed_dim=dim,
                n_mels=values.get("n_mels_patch", 128),
                hop_length=values.get("hop_length", 160),
            ),
            decoder=VocosDecoderConfig(
                input_dim=dim,
                dim=values.get("decoder_embed_dim", 1280),
                intermediate_dim=values.get("decoder_intermediate_size", 5120),
                num_layers=values.get("decoder_depth", 12),
                n_fft=values.get("istft_n_fft", 1280),
                hop_length=values.get("istft_hop", 320),
            ),
            upsample=values.get("upsample_tokens", 2),
        )

    @classmethod
    def tiny(cls) -> TokenizerConfig:
        """A few-hundred-thousand-parameter model with the real front ends and frame rates, for tests."""
        dim = 32
        return cls(
            semantic=SemanticEncoderConfig(embed_dim=dim, depth=2, num_heads=2),
            acoustic=AcousticProjectionConfig(embed_dim=dim),
            decoder=VocosDecoderConfig(input_dim=dim, dim=dim, intermediate_dim=64, num_layers=2),
        )
