"""The official dasheng-denoiser (xiaomi-research/dasheng-denoiser, HF mispeech/dasheng-denoiser).

Frozen Dasheng-base (768-d, 25 Hz) → 3 Transformer blocks + LayerNorm → its own Vocos
(backbone 768 / 1152 / 8 layers, ISTFT head n_fft 1280, hop 640, "same") at 16 kHz.
Built from sonotok's own parts (SemanticEncoder, LatentDenoiser, VocosDecoder) and
loaded strictly through a key map (`sonotok.core.hub.HubMixin`). Checkpoints read: the
Zenodo/HF `.pt` dump {"config": {...}, "state_dict": {...}} (read with weights_only=True), or
a folder with `config.yaml` (same structure as the dump's config) + `model.safetensors` (the
state_dict). `save_pretrained` writes the latter, official key names included.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from sonotok.core.config import check_numbers, dataclass_from_dict
from sonotok.core.errors import CheckpointError, ConfigError
from sonotok.core.hub import HubMixin, model_card, read_safetensors, rename_keys, write_weights
from sonotok.core.io import atomic_write
from sonotok.tokenizer import (
    SemanticEncoder,
    SemanticEncoderConfig,
    VocosDecoder,
    VocosDecoderConfig,
)
from sonotok.tokenizer.decoder import synthesize_chunked

from .denoiser import DenoiserConfig, LatentDenoiser

OFFICIAL_ID = "mispeech/dasheng-denoiser"

# Official state_dict key → ours (first match wins).
OFFICIAL_DENOISER_KEYS: list[tuple[str, str]] = [
    (
        r"^feature_extractor\.feat_encoder\.front_end\.0\.spectrogram\.window$",
        "encoder.front_end.window",
    ),
    (r"^feature_extractor\.feat_encoder\.front_end\.0\.mel_scale\.fb$", "encoder.front_end.fb"),
    (r"^feature_extractor\.feat_encoder\.init_bn\.1\.", "encoder.init_bn."),
    (r"^feature_extractor\.feat_encoder\.patch_embed\.proj\.", "encoder.patch_embed."),
    (r"^feature_extractor\.feat_encoder\.", "encoder."),
    (r"^second_encoder\.", "denoiser."),
    (r"^backbone\.", "vocoder.backbone."),
    (r"^head\.", "vocoder.head."),
]

# Ours → official, for `save_pretrained` (the inverse of OFFICIAL_DENOISER_KEYS).
TO_OFFICIAL_KEYS: list[tuple[str, str]] = [
    (
        r"^encoder\.front_end\.window$",
        "feature_extractor.feat_encoder.front_end.0.spectrogram.window",
    ),
    (r"^encoder\.front_end\.fb$", "feature_extractor.feat_encoder.front_end.0.mel_scale.fb"),
    (r"^encoder\.init_bn\.", "feature_extractor.feat_encoder.init_bn.1."),
    (r"^encoder\.patch_embed\.", "feature_extractor.feat_encoder.patch_embed.proj."),
    (r"^encoder\.", "feature_extractor.feat_encoder."),
    (r"^denoiser\.", "second_encoder."),
    (r"^vocoder\.", ""),
]


class DashengDenoiser(HubMixin, nn.Module):
    """16 kHz noisy waves → enhanced waves, the official model's three stages as sonotok modules.

    Same stage interface as `TokenizerDenoiser`: `encode_latents`, `denoise`, `synthesize`.
    """

    def __init__(
        self,
        encoder: SemanticEncoderConfig | None = None,
        denoiser: DenoiserConfig | None = None,
        vocoder: VocosDecoderConfig | None = None,
    ):
        super().__init__()
        self.encoder = SemanticEncoder(encoder or SemanticEncoderConfig.preset("base"))
        d = self.encoder.embed_dim
        # dasheng-denoiser config.yaml: DashengBlocks(768, 8 heads, 3 layers), mlp_ratio 2.0 in its code
        self.denoiser = LatentDenoiser(
            denoiser or DenoiserConfig(latent_dim=d, dim=d, num_layers=3, num_heads=8)
        )
        self.vocoder = VocosDecoder(
            vocoder
            or VocosDecoderConfig(
                input_dim=d, dim=d, intermediate_dim=1152, num_layers=8, n_fft=1280, hop_length=640
            )
        )
        self.requires_grad_(False)
        self.eval()

    sample_rate = 16000
    output_sample_rate = 16000  # the Vocos decoder writes at the input rate

    @property
    def hop_samples(self) -> int:
        return self.vocoder.config.hop_length

    @property
    def device(self) -> torch.device:
        return self.vocoder.head.out.weight.device

    def set_compute_dtype(self, dtype: torch.dtype | None) -> DashengDenoiser:
        """Hold and run the ViT blocks and the Vocos backbone in bf16/fp16 (None: fp32)."""
        dtype = dtype or torch.float32
        self.encoder.set_compute_dtype(dtype)
        self.vocoder.backbone.to(dtype)
        return self

    def encode_latents(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """16 kHz waves (N_i,) → Dasheng-base features (T_i, 768), T = (1 + N // 160) // 4."""
        with torch.no_grad():
            return self.encoder([w.to(self.device, torch.float32) for w in waves])

    def denoise(self, latents: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.denoiser(latents, mask)

    @property
    def decoder_context(self) -> int:
        return self.vocoder.config.receptive_radius + 1

    def synthesize(self, latents: torch.Tensor, chunk_frames: int | None = 750) -> torch.Tensor:
        """(B, T, 768) → (B, T · 640) waves at 16 kHz; chunked, equal to one pass."""

        def decode(z: torch.Tensor) -> torch.Tensor:
            return self.vocoder(z.transpose(1, 2).to(self.device, torch.float32))

        return synthesize_chunked(
            decode, latents, chunk_frames, self.decoder_context, self.hop_samples
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """One 16 kHz wave (N,) → enhanced (T · 640,), the whole clip in one pass (as the reference)."""
        z = self.encode_latents([wave])[0][None]
        return self.synthesize(self.denoise(z), chunk_frames=None)[0]

    # ---- checkpoints (sonotok.core.hub.HubMixin) -----------------------------------------
    model_type = "dasheng-denoiser"
    hub_files = ["*.pt", "*.yaml", "*.safetensors", "*.json"]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = OFFICIAL_ID,
        device: str | torch.device | None = None,
        **hub,
    ) -> DashengDenoiser:
        """Load the official checkpoint strictly: a `.pt` dump, a folder holding one, or a
        folder with config.yaml + model.safetensors; a hub id is downloaded first.

        hub: `revision`, `cache_dir`, `token`, `local_files_only` (`sonotok.core.hub.resolve`).
        """
        return super().from_pretrained(name_or_path, device, **hub)

    @classmethod
    def build(cls, config: tuple) -> DashengDenoiser:
        return cls(*config)

    @classmethod
    def load_path(cls, path: Path, source: str) -> DashengDenoiser:
        config, state = read_official(path)
        configs = configs_from_official(config, source)
        return cls.from_state_dict(configs, rename_keys(state, OFFICIAL_DENOISER_KEYS), source)

    def official_config(self) -> dict:
        """The official config.yaml contents for this model (a reduced encoder is described
        by its differences from dasheng_base, as the parity fixture does)."""
        encoder = self.encoder.config.to_dict()
        base = SemanticEncoderConfig.preset("base").to_dict()
        d, den, voc = self.encoder.embed_dim, self.denoiser.config, self.vocoder.config
        return {
            "feature_extractor": {
                "class_path": "dasheng_denoiser.feature_extractors.DashengFeatures",
                "init_args": {
                    "dasheng_model": "dasheng_base",
                    **{k: v for k, v in encoder.items() if v != base[k]},
                },
            },
            "second_encoder": {
                "class_path": "dasheng_denoiser.models.DashengBlocks",
                "init_args": {
                    "embedding_dims": d,
                    "num_heads": den.num_heads,
                    "num_layers": den.num_layers,
                },
            },
            "backbone": {
                "class_path": "vocos.models.VocosBackbone",
                "init_args": {
                    "input_channels": d,
                    "dim": voc.dim,
                    "intermediate_dim": voc.intermediate_dim,
                    "num_layers": voc.num_layers,
                },
            },
            "head": {
                "class_path": "vocos.heads.ISTFTHead",
                "init_args": {
                    "dim": voc.dim,
                    "n_fft": voc.n_fft,
                    "hop_length": voc.hop_length,
                    "padding": "same",
                },
            },
        }

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """config.yaml + model.safetensors in the official layout and key names (derived
        front-end tables included, as in the released file); atomic writes."""
        import yaml

        config = self.official_config()
        ours = (self.encoder.config, self.denoiser.config, self.vocoder.config)
        if configs_from_official(config, "this model") != ours:
            raise CheckpointError(
                "this DashengDenoiser has settings the official layout cannot describe "
                "(mlp_ratio, norms or decoder options differ from dasheng-denoiser's)"
            )
        state = {**dict(self.named_buffers()), **self.state_dict()}
        folder = write_weights(folder, rename_keys(state, TO_OFFICIAL_KEYS))
        text = yaml.safe_dump(config, sort_keys=False)
        atomic_write(folder / "config.yaml", lambda tmp: Path(tmp).write_text(text))
        return folder

    def model_card(self, repo_id: str) -> str:
        body = (
            "\nThe official dasheng-denoiser layout (config.yaml + model.safetensors); "
            "sonotok's `EnhancementPipeline.from_pretrained` loads it too.\n"
        )
        return model_card(repo_id, type(self), ["speech-enhancement", "dasheng-denoiser"], body)


def is_official_checkpoint(path: Path) -> bool:
    """A `.pt` file, or a folder with a `.pt` dump or config.yaml (the official layouts)."""
    if path.is_file():
        return path.suffix == ".pt"
    return (path / "config.yaml").is_file() or any(path.glob("*.pt"))


def read_official(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The official config dict and state_dict from a `.pt` dump or config.yaml + safetensors."""
    if path.is_dir():
        dumps = sorted(path.glob("*.pt"))
        if (path / "config.yaml").is_file() and (path / "model.safetensors").is_file():
            import yaml

            try:
                config = yaml.safe_load((path / "config.yaml").read_text())
            except (yaml.YAMLError, UnicodeDecodeError) as err:
                raise ConfigError(f"{path / 'config.yaml'}: not valid YAML ({err})") from None
            return config, read_safetensors(path / "model.safetensors")
        if len(dumps) != 1:
            raise CheckpointError(
                f"{path}: expected config.yaml + model.safetensors or one .pt checkpoint, found "
                f"{[p.name for p in dumps] or 'neither'}; download mispeech/dasheng-denoiser into it"
            )
        path = dumps[0]
    try:
        dump = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path}: not a readable dasheng-denoiser checkpoint "
            f"({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); "
            "it must be a torch.save'd dict of plain values and tensors"
        ) from None
    if (
        not isinstance(dump, dict)
        or not isinstance(dump.get("state_dict"), dict)
        or "config" not in dump
    ):
        raise CheckpointError(
            f"{path}: expected a dict with 'config' and 'state_dict' (the official dump)"
        )
    return dump["config"], dump["state_dict"]


def _init_args(config: dict, part: str, source: str) -> dict:
    try:
        args = config[part].get("init_args", {})
    except (KeyError, AttributeError, TypeError):
        raise CheckpointError(
            f"{source}: config has no {part!r} section; not a dasheng-denoiser config"
        ) from None
    if not isinstance(args, dict):
        raise ConfigError(f"{source}: {part}.init_args must be a mapping, got {args!r:.40}")
    return dict(args)


def _typed(cls, values: dict, source: str, part: str):
    """A config dataclass from official settings, every value type-checked."""
    return dataclass_from_dict(cls, values, f"{source}: {part}")


def configs_from_official(
    config: dict, source: str
) -> tuple[SemanticEncoderConfig, DenoiserConfig, VocosDecoderConfig]:
    """Map the official config (feature_extractor / second_encoder / backbone / head) onto ours.

    `feature_extractor.init_args` may carry embed_dim / depth / num_heads to describe a
    reduced encoder (used by the parity fixture); the released model names dasheng_base.
    """
    fe = _init_args(config, "feature_extractor", source)
    name = fe.pop("dasheng_model", "dasheng_base")
    try:
        encoder = SemanticEncoderConfig.preset(str(name))
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None
    encoder = _typed(
        SemanticEncoderConfig, {**encoder.to_dict(), **fe}, source, "feature_extractor"
    )
    se = _init_args(config, "second_encoder", source)
    bb = _init_args(config, "backbone", source)
    head = _init_args(config, "head", source)
    if head.get("padding", "same") != "same":
        raise CheckpointError(
            f"{source}: head padding {head['padding']!r} unsupported; only 'same'"
        )
    if head.get("dim", bb.get("dim")) != bb.get("dim"):
        raise CheckpointError(f"{source}: head.dim differs from backbone.dim")
    dim = se.get("embedding_dims", encoder.embed_dim)
    if dim != encoder.embed_dim or bb.get("input_channels", dim) != dim:
        raise CheckpointError(
            f"{source}: widths disagree (encoder {encoder.embed_dim}, blocks {dim}, "
            f"backbone input {bb.get('input_channels')})"
        )
    denoiser = _typed(
        DenoiserConfig,
        dict(
            latent_dim=dim,
            dim=dim,
            num_layers=se.get("num_layers", 3),
            num_heads=se.get("num_heads", 8),
            mlp_ratio=2.0,  # hard-coded in dasheng_denoiser/models.py
            qkv_bias=True,
            layer_norm_eps=1e-5,
            final_norm=True,
            residual=False,
        ),
        source,
        "second_encoder",
    )
    vocoder = _typed(
        VocosDecoderConfig,
        dict(
            input_dim=dim,
            dim=bb.get("dim", 768),
            intermediate_dim=bb.get("intermediate_dim", 1152),
            num_layers=bb.get("num_layers", 8),
            n_fft=head.get("n_fft", 1280),
            hop_length=head.get("hop_length", 640),
        ),
        source,
        "backbone/head",
    )
    sizes = ("dim", "intermediate_dim", "num_layers", "n_fft", "hop_length")
    check_numbers(vocoder, f"{source}: backbone/head", positive=sizes)
    if vocoder.hop_length != encoder.hop_length * encoder.patch_frames:
        raise CheckpointError(
            f"{source}: head hop {vocoder.hop_length} ≠ encoder frame hop "
            f"{encoder.hop_length * encoder.patch_frames}; output would not align with the input"
        )
    return encoder, denoiser, vocoder
