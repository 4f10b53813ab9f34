"""The codec GAN recipe as typed settings (one dataclass per YAML section).

One recipe for every discrete codec family (`model.family` names a registered codec recipe,
see `codec.register_codec_recipe`): L_G = mel·L1(multi-scale log-mel) + waveform·MSE +
feature_matching·L_fm + adversarial·L_adv + Σ codec[name]·(the generator's own losses), with
hinge or least-squares GAN terms from the discriminators chosen here. See configs/codec/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from sonotok.core import training
from sonotok.core.config import check_numbers
from sonotok.core.errors import ConfigError

from . import recipe
from .recipe import check_crops


@dataclass
class CodecModelSettings:
    """What to train. `family`: a registered codec recipe (e.g. sqcodec, unicodec). A new
    model from `config` (the family's own config fields; empty: its defaults), or continue
    from `pretrained` (a save_pretrained folder, official name or hub id, as load_tokenizer
    takes). `options`: the family recipe's own training options (e.g. unicodec: {domain:
    speech}); each recipe documents and checks its keys."""

    family: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        from .codec import codec_recipes

        known = sorted(codec_recipes())
        if not self.family:
            raise ConfigError(f"model.family is not set; choose one of {known}")
        if self.family not in known:
            raise ConfigError(
                f"model.family={self.family!r} has no codec training recipe; choose one of "
                f"{known} (or register one with register_codec_recipe)"
            )
        if self.pretrained and self.config:
            raise ConfigError(
                "set model.config (a new codec) or model.pretrained (continue from a folder), "
                "not both"
            )


@dataclass
class CodecDataSettings(recipe.CropDataSettings):
    """Crops at the codec's own sample rate; lengths are samples at that rate and must be
    whole codec frames (checked once the model is built)."""

    val_segment_samples: int = 80000

    def __post_init__(self):
        super().__post_init__()
        check_numbers(self, "data", positive=("segment_samples", "val_segment_samples"))


@dataclass
class CodecDiscriminatorSettings(recipe.DiscriminatorSettings):
    """Each discriminator's loss weight (0 disables it): mpd (HiFi-GAN multi-period), mrd
    (multi-resolution complex STFT split in bands, DAC / Vocos), mfd (multi-frequency
    magnitude + phase). The codec recipes use mpd + mrd."""

    mfd: float = 0.0
    mpd: float = 1.0
    mrd: float = 1.0


@dataclass
class CodecLossSettings:
    """Generator loss weights. `codec` weights the generator's own losses by the names its
    forward returns (e.g. {commitment: 1000}); a name not listed has weight 1 (already
    weighted). `gan`: hinge (Vocos / UniCodec) or least_squares (HiFi-GAN / DAC / L3AC)."""

    mel: float = 45.0  # Vocos; UniCodec's fine-tune stage: 450
    mel_scales: list[tuple[int, int]] = field(default_factory=lambda: [(1024, 100)])
    waveform: float = 0.0  # MSE on samples (L3AC: 100)
    feature_matching: float = 1.0
    adversarial: float = 1.0
    gan: Literal["hinge", "least_squares"] = "hinge"
    codec: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        check_numbers(
            self,
            "loss",
            non_negative=("mel", "waveform", "feature_matching", "adversarial"),
        )
        if not self.mel_scales or any(n < 2 or m < 1 for n, m in self.mel_scales):
            raise ConfigError(
                f"loss.mel_scales={self.mel_scales}: give at least one [n_fft, n_mels] pair, "
                "e.g. [[1024, 100]] (n_fft >= 2, n_mels >= 1)"
            )
        for name, weight in self.codec.items():
            if weight < 0:
                raise ConfigError(f"loss.codec.{name} must be >= 0, got {weight}")


@dataclass
class CodecOptimSettings(recipe.OptimSettings):
    """The shared optim section; AdamW per model (generator, discriminators). `mel_only_steps`
    train the generator on its reconstruction and own losses before the GAN starts;
    the discriminators step every `discriminator_every` steps after that (L3AC: 15)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.9)
    weight_decay: float = 0.0
    discriminator_every: int = 1
    discriminator_grad_clip: float | None = None  # null: optim.grad_clip

    def __post_init__(self):
        super().__post_init__()
        check_numbers(self, "optim", positive=("discriminator_every",))
        if self.discriminator_grad_clip is not None and self.discriminator_grad_clip < 0:
            raise ConfigError(
                f"optim.discriminator_grad_clip must be >= 0 or null, got "
                f"{self.discriminator_grad_clip}"
            )


@dataclass
class CodecTrainSettings(recipe.GANTrainSettings):
    """The shared GAN train section (validation and media intervals)."""

    output_dir: str = "runs/codec"


def min_segment_samples(config: CodecTrainConfig) -> tuple[int, str]:
    """The fewest samples a crop can have, and the setting that asks for them (every STFT of
    the recipe is centred: it reflect-pads n_fft // 2 samples at each end)."""
    mel = {"loss.mel_scales": max(n for n, _ in config.loss.mel_scales)}
    return recipe.shortest_crop({**mel, **recipe.spectral_needs(config.discriminators)})


@dataclass
class CodecTrainConfig:
    """Everything `sonotok train codec` reads from its YAML file."""

    RENAMED: ClassVar[dict[str, str]] = training.OLD_KEYS

    model: CodecModelSettings = field(default_factory=CodecModelSettings)
    data: CodecDataSettings = field(default_factory=CodecDataSettings)
    discriminators: CodecDiscriminatorSettings = field(default_factory=CodecDiscriminatorSettings)
    loss: CodecLossSettings = field(default_factory=CodecLossSettings)
    optim: CodecOptimSettings = field(default_factory=CodecOptimSettings)
    train: CodecTrainSettings = field(default_factory=CodecTrainSettings)

    def __post_init__(self):
        advice = "(a multiple of the codec's hop), or a smaller n_fft"
        check_crops(self, *min_segment_samples(self), 1000, advice)


def check_frames(data: CodecDataSettings, hop: int, family: str) -> None:
    """ConfigError when a crop length is not a whole number of the codec's frames."""
    for name in ("segment_samples", "val_segment_samples"):
        value = getattr(data, name)
        if value % hop:
            nearest = max(hop, round(value / hop) * hop)
            raise ConfigError(
                f"data.{name}={value} is not a multiple of the {family} codec's hop ({hop} "
                f"samples per frame); use e.g. {nearest}"
            )
