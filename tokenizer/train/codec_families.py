"""The codec GAN solver's recipes for sonotok's own discrete codec families.

Each family gets a generator wrapper (its model's training forward → `CodecOutput`) and a build
function registered with `register_codec_recipe`; the model files know nothing of training.
Families are imported inside the build functions, so listing the recipes stays light.

- unicodec: `UnicodecTokenizer.forward(wave, domain)` → reconstruction, codes and the SimVQ
  commitment loss `commit` (the official recipe weights it by 1000: `loss.codec: {commit:
  1000}`). `model.options.domain`: the codebook partition every training clip is quantised in
  ("auto": the bundled classifier picks per clip, as at inference; the official recipe reads a
  label per file). The decoder's AdaLayerNorm id is 0 (the one inference uses; the official
  recipe draws one of four identical "bandwidths" at random). `model.options.stage`: the
  official stages acoustic → semantic → finetune (each from the previous export through
  `model.pretrained`); semantic masks encoder frames, adds the `contrastive` loss (official
  weight `loss.codec: {contrastive: 0.001}`) and freezes the decoder (`unicodec/semantic.py`).
- sqcodec: `SQCodecModel.forward(wave)` → reconstruction and codes; the FSQ's noise
  substitution (the paper's hybrid quantization) is on in training mode, and FSQ adds no loss
  of its own. `model.config.name` picks an official configuration (3kbps, 6kbps, ...), other
  keys override its fields. L3AC's recipe (SQCodec's successor, whose `train` branch is public)
  adds waveform MSE ×100 (`loss.waveform`) and LS-GAN DAC discriminators stepped every 15
  batches; its Whisper perceptual loss is not part of this solver.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sonotok.core.config import build
from sonotok.core.errors import ConfigError

from ..interface import Tokenizer, load_tokenizer
from .codec import CodecOutput, register_codec_recipe
from .codec_recipe import CodecModelSettings


def recipe_options(settings: CodecModelSettings, defaults: dict[str, Any]) -> dict[str, Any]:
    """`model.options` over a family's `defaults`; ConfigError for a key it does not know."""
    unknown = sorted(set(settings.options) - set(defaults))
    if unknown:
        raise ConfigError(
            f"model.options: unknown keys {unknown} for model.family={settings.family}; valid "
            f"keys: {sorted(defaults)}"
        )
    return {**defaults, **settings.options}


def pretrained_codec(settings: CodecModelSettings, cls: type[Tokenizer]) -> Tokenizer:
    """`model.pretrained` loaded with load_tokenizer; ConfigError if it is another family."""
    codec = load_tokenizer(settings.pretrained)
    if not isinstance(codec, cls):
        raise ConfigError(
            f"model.pretrained={settings.pretrained} is a {type(codec).__name__}, not a "
            f"{settings.family} model; point it at a {settings.family} folder or name"
        )
    return codec


# ---- UniCodec ---------------------------------------------------------------------------
class UnicodecGenerator(nn.Module):
    """UniCodec's training view: audio (B, N) → CodecOutput(reconstruction (B, ⌈N/hop⌉·hop),
    {"commit": SimVQ commitment loss}, codes (B, T)), every clip in partition `domain`."""

    def __init__(self, codec: Tokenizer, domain: str, semantic: nn.Module | None = None):
        super().__init__()
        self.codec = codec
        self.domain = domain
        self.semantic = semantic  # the semantic stage's objective (checkpointed, not exported)

    def forward(self, audio: torch.Tensor) -> CodecOutput:
        recon, codes, losses = self.codec(audio, self.domain, semantic=self.semantic)
        return CodecOutput(recon, losses, codes)


UNICODEC_STAGES = ("acoustic", "semantic", "finetune")


@register_codec_recipe("unicodec")
def build_unicodec(settings: CodecModelSettings) -> tuple[nn.Module, Tokenizer]:
    """`model.options.stage`: acoustic / finetune train everything on the codec losses;
    semantic adds masked-frame prediction (`contrastive`, see `unicodec/semantic.py`) and
    freezes the decoder, as the official recipe."""
    from ..unicodec import UnicodecConfig, UnicodecTokenizer
    from ..unicodec.family import DOMAIN_CHOICES
    from ..unicodec.semantic import SemanticObjective

    options = recipe_options(settings, {"domain": "auto", "stage": "acoustic"})
    if options["domain"] not in DOMAIN_CHOICES:
        raise ConfigError(
            f"model.options.domain={options['domain']!r}: choose one of {list(DOMAIN_CHOICES)}"
        )
    if options["stage"] not in UNICODEC_STAGES:
        raise ConfigError(
            f"model.options.stage={options['stage']!r}: choose one of {list(UNICODEC_STAGES)}"
        )
    if settings.pretrained:
        codec = pretrained_codec(settings, UnicodecTokenizer)
    else:
        codec = UnicodecTokenizer(build(UnicodecConfig, settings.config, "model.config"))
    semantic = None
    if options["stage"] == "semantic":
        semantic = SemanticObjective(codec.config.dimension)
        codec.decoder.requires_grad_(False)  # official: backbone and head frozen
    return UnicodecGenerator(codec, options["domain"], semantic), codec


# ---- SQCodec ----------------------------------------------------------------------------
class SQCodecGenerator(nn.Module):
    """SQCodec's training view: audio (B, N) → CodecOutput(reconstruction (B, N), no losses of
    its own (FSQ has none), codes (B, T)); the FSQ noise substitution is on in training mode."""

    def __init__(self, codec: Tokenizer):
        super().__init__()
        self.codec = codec

    def forward(self, audio: torch.Tensor) -> CodecOutput:
        recon, codes, _ = self.codec.model(audio)
        return CodecOutput(recon, {}, codes)


def sqcodec_config(values: dict[str, Any]):
    """`model.config` → SQCodecConfig: `name` one of the official configurations starts from
    it (other keys override its fields); otherwise the fields over the defaults."""
    from dataclasses import asdict

    from ..sqcodec import OFFICIAL_CONFIGS, SQCodecConfig

    name = values.get("name")
    if name in OFFICIAL_CONFIGS:
        values = {**asdict(OFFICIAL_CONFIGS[name]), **values}
    elif name is not None and set(values) == {"name"}:
        raise ConfigError(
            f"model.config.name={name!r} is not an official SQCodec configuration; choose one "
            f"of {sorted(OFFICIAL_CONFIGS)} or give the fields of a new one"
        )
    return build(SQCodecConfig, values, "model.config")


@register_codec_recipe("sqcodec")
def build_sqcodec(settings: CodecModelSettings) -> tuple[nn.Module, Tokenizer]:
    from ..sqcodec import SQCodecTokenizer

    recipe_options(settings, {})
    if settings.pretrained:
        codec = pretrained_codec(settings, SQCodecTokenizer)
    else:
        codec = SQCodecTokenizer(sqcodec_config(dict(settings.config)))
    return SQCodecGenerator(codec), codec
