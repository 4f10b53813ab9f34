"""SemantiCodec's decoder: quantized features → audio by latent diffusion (AudioLDM-style).

One window (10.24 s in the release) at a time, batched: the (B, Tw, C) feature, with a fixed
sinusoidal position embedding appended (C + 192), conditions a v-prediction UNet through cross
attention; the sampled latent (B, 8, 256, 16) is decoded by the VAE into a 64-bin log-mel
(B, 1024, 64) and by HiFi-GAN into audio (B, 163872: 10.24 s plus 32 samples). Classifier-free
guidance (2.0 in the release) contrasts the feature with a zeroed one that keeps the position
embedding.

The blocks are diffusers' and transformers' own, onto which the official weights map exactly:
the UNet is `AudioLDM2UNet2DConditionModel` (each attention level holds a self-attention-only
transformer before the cross-attention one, as the reference's `extra_sa_layer`), the VAE is
`AutoencoderKL`, the vocoder `SpeechT5HifiGan`. `load_official_decoder` maps the release's
`decoder.ckpt` (a `LatentDiffusion` state dict) onto them; see `official_key_map`.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import torch
from torch import nn

from sonotok.core.errors import CheckpointError, ConfigError, MissingDependencyError
from sonotok.tokenizer.semanticodec.decoder_config import DecoderConfig
from sonotok.tokenizer.semanticodec.sampling import (
    Denoiser,
    draw_noise,
    linear_alphas_cumprod,
    num_noise_draws,
    sample,
)

__all__ = ["SemantiCodecDecoder", "load_official_decoder", "official_key_map", "position_embedding"]


def position_embedding(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sine/cosine table, as `semanticodec.utils.PositionalEncoding`."""
    position = torch.arange(length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * -(math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


def _import_blocks():
    try:
        from diffusers import AutoencoderKL
        from diffusers.pipelines.audioldm2.modeling_audioldm2 import (
            AudioLDM2UNet2DConditionModel,
        )
        from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig
    except ImportError as err:
        raise MissingDependencyError(
            "the SemantiCodec decoder needs diffusers and transformers: "
            "pip install 'sonotok[generation]'"
        ) from err
    return AudioLDM2UNet2DConditionModel, AutoencoderKL, SpeechT5HifiGan, SpeechT5HifiGanConfig


def _attention_levels(cfg: DecoderConfig) -> list[bool]:
    """Which UNet levels attend: level l runs at downsampling 2**l (`attention_resolutions`)."""
    return [2**level in cfg.attention_resolutions for level in range(len(cfg.channel_mult))]


def build_unet(cfg: DecoderConfig) -> nn.Module:
    unet_cls, *_ = _import_blocks()
    attn = _attention_levels(cfg)
    channels = tuple(cfg.model_channels * m for m in cfg.channel_mult)
    return unet_cls(
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in attn[::-1]),
        block_out_channels=channels,
        layers_per_block=cfg.num_res_blocks,
        cross_attention_dim=[(None, cfg.context_dim)] * len(channels),
        attention_head_dim=tuple(c // cfg.num_head_channels for c in channels),  # = head count
        transformer_layers_per_block=cfg.transformer_depth,
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def build_vae(cfg: DecoderConfig) -> nn.Module:
    _, vae_cls, *_ = _import_blocks()
    n = len(cfg.vae_ch_mult)
    return vae_cls(
        in_channels=1,
        out_channels=1,
        latent_channels=cfg.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.vae_channels * m for m in cfg.vae_ch_mult),
        layers_per_block=cfg.vae_num_res_blocks,
        norm_num_groups=32,
    )


def build_vocoder(cfg: DecoderConfig) -> nn.Module:
    *_, hifigan_cls, hifigan_config = _import_blocks()
    return hifigan_cls(
        hifigan_config(
            model_in_dim=cfg.mel_bins,
            sampling_rate=cfg.sample_rate,
            upsample_initial_channel=cfg.vocoder_initial_channel,
            upsample_rates=list(cfg.upsample_rates),
            upsample_kernel_sizes=list(cfg.upsample_kernel_sizes),
            resblock_kernel_sizes=list(cfg.resblock_kernel_sizes),
            resblock_dilation_sizes=[list(d) for d in cfg.resblock_dilation_sizes],
            leaky_relu_slope=0.1,
            normalize_before=False,
        )
    )


class SemantiCodecDecoder(nn.Module):
    """Quantized features (B, Tw, C) of one window → audio (B, `config.window_samples`).

    Submodules: `unet` (v-prediction), `vae` (mel autoencoder; its encoder is used only by
    training), `vocoder` (HiFi-GAN); buffer `scale_factor` (latent scale, from the checkpoint).
    """

    def __init__(self, config: DecoderConfig | None = None):
        super().__init__()
        self.config = config or DecoderConfig()
        self.unet = build_unet(self.config)
        self.vae = build_vae(self.config)
        self.vocoder = build_vocoder(self.config)
        self.register_buffer("scale_factor", torch.tensor(1.0))
        pe = position_embedding(self.config.pos_embed_len, self.config.pos_embed_dim)
        self.register_buffer("pos_embed", pe, persistent=False)
        cfg = self.config
        self.alphas_cumprod = linear_alphas_cumprod(cfg.timesteps, cfg.linear_start, cfg.linear_end)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        cfg = self.config
        return cfg.latent_channels, cfg.latent_t_size, cfg.latent_f_size

    def context(self, features: torch.Tensor) -> torch.Tensor:
        """(B, Tw, C) → (B, Tw, C + 192): the feature with its position embedding appended."""
        b, t, c = features.shape
        if c != self.config.feature_dim:
            raise ConfigError(
                f"features have width {c}; this decoder takes {self.config.feature_dim}"
            )
        if t > self.config.pos_embed_len:
            raise ConfigError(f"a window holds at most {self.config.pos_embed_len} tokens, got {t}")
        pe = self.pos_embed[:t].to(features.dtype).expand(b, t, -1)
        return torch.cat([features, pe], dim=-1)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The UNet's v-prediction for latents x (B, C, H, W) at timesteps t (B,), in x's dtype
        (the UNet may run in lower precision; the sampler's arithmetic stays in x's)."""
        dtype = self.unet.conv_in.weight.dtype
        v = self.unet(x.to(dtype), t, encoder_hidden_states=context.to(dtype), return_dict=False)
        return v[0].to(x.dtype)

    def guided_denoiser(self, features: torch.Tensor, guidance: float) -> Denoiser:
        """A (x, t) → v closure with classifier-free guidance (one UNet pass on 2B when used)."""
        cond = self.context(features)
        if guidance == 1.0:
            return lambda x, t: self.velocity(x, t, cond)
        both = torch.cat([self.context(torch.zeros_like(features)), cond])

        def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            uncond_v, cond_v = self.velocity(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
            return uncond_v + guidance * (cond_v - uncond_v)

        return denoise

    def latents_to_audio(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) diffusion latents → (B, samples) audio via the VAE mel and HiFi-GAN."""
        z = (latents / self.scale_factor).to(self.vae.post_quant_conv.weight.dtype)
        mel = self.vae.decode(z, return_dict=False)[0]
        return self.vocoder(mel.squeeze(1).to(self.vocoder.conv_pre.weight.dtype)).float()

    @torch.no_grad()
    def generate(
        self,
        features: torch.Tensor,
        steps: int = 50,
        guidance: float = 2.0,
        sampler: str = "ddim",
        eta: float = 1.0,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One batch of windows: features (B, Tw, C) → audio (B, window_samples).

        `noise` (B, draws, C, H, W) fixes x_T and the DDIM step noise (see `sampling`);
        otherwise they are drawn from `generator`. Defaults are the release's (50 DDIM steps,
        eta 1, guidance 2)."""
        batch = features.shape[0]
        if noise is None:
            draws = num_noise_draws(sampler, steps, self.config.timesteps)
            noise = draw_noise((batch, *self.latent_shape), draws, generator, features.device)
        denoise = self.guided_denoiser(features, float(guidance))
        latents = sample(
            denoise, noise.to(features), self.alphas_cumprod, steps, sampler=sampler, eta=eta
        )
        return self.latents_to_audio(latents)


# ---- official checkpoint -------------------------------------------------------------------

#: Keys of decoder.ckpt that inference does not use: EMA shadows (the release samples with the
#: raw weights), the schedule buffers (recomputed from the config; betas are checked), logvar.
_IGNORED = re.compile(
    r"^(model_ema\..*|logvar|betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|"
    r"sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|"
    r"sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|"
    r"posterior_mean_coef1|posterior_mean_coef2)$"
)

_RESBLOCK = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
_VAE_RES = {"nin_shortcut": "conv_shortcut"}
_VAE_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _unet_prefixes(cfg: DecoderConfig) -> dict[str, tuple[str, dict[str, str]]]:
    """openaimodel module path → (diffusers module path, sub-name renames)."""
    out = {
        "time_embed.0": ("time_embedding.linear_1", {}),
        "time_embed.2": ("time_embedding.linear_2", {}),
        "input_blocks.0.0": ("conv_in", {}),
        "out.0": ("conv_norm_out", {}),
        "out.2": ("conv_out", {}),
    }
    attn = _attention_levels(cfg)
    n_attn = 2  # self-attention-only transformer, then the cross-attention one
    nrb, k = cfg.num_res_blocks, 1
    for level, has_attn in enumerate(attn):
        for i in range(nrb):
            out[f"input_blocks.{k}.0"] = (f"down_blocks.{level}.resnets.{i}", _RESBLOCK)
            for j in range(n_attn if has_attn else 0):
                out[f"input_blocks.{k}.{1 + j}"] = (
                    f"down_blocks.{level}.attentions.{i * n_attn + j}",
                    {},
                )
            k += 1
        if level != len(attn) - 1:
            out[f"input_blocks.{k}.0.op"] = (f"down_blocks.{level}.downsamplers.0.conv", {})
            k += 1
    out["middle_block.0"] = ("mid_block.resnets.0", _RESBLOCK)
    out["middle_block.1"] = ("mid_block.attentions.0", {})
    out["middle_block.2"] = ("mid_block.attentions.1", {})
    out["middle_block.3"] = ("mid_block.resnets.1", _RESBLOCK)
    k = 0
    for up, has_attn in enumerate(attn[::-1]):
        for i in range(nrb + 1):
            out[f"output_blocks.{k}.0"] = (f"up_blocks.{up}.resnets.{i}", _RESBLOCK)
            n = n_attn if has_attn else 0
            for j in range(n):
                out[f"output_blocks.{k}.{1 + j}"] = (
                    f"up_blocks.{up}.attentions.{i * n_attn + j}",
                    {},
                )
            if i == nrb and up != len(attn) - 1:
                out[f"output_blocks.{k}.{1 + n}.conv"] = (f"up_blocks.{up}.upsamplers.0.conv", {})
            k += 1
    return {f"model.diffusion_model.{a}": (f"unet.{b}", r) for a, (b, r) in out.items()}


def _vae_prefixes(cfg: DecoderConfig) -> dict[str, tuple[str, dict[str, str]]]:
    src, dst = "first_stage_model", "vae"
    out = {f"{src}.{n}": (f"{dst}.{n}", {}) for n in ("quant_conv", "post_quant_conv")}
    n = len(cfg.vae_ch_mult)
    for part in ("encoder", "decoder"):
        s, d = f"{src}.{part}", f"{dst}.{part}"
        out[f"{s}.conv_in"] = (f"{d}.conv_in", {})
        out[f"{s}.conv_out"] = (f"{d}.conv_out", {})
        out[f"{s}.norm_out"] = (f"{d}.conv_norm_out", {})
        out[f"{s}.mid.block_1"] = (f"{d}.mid_block.resnets.0", _VAE_RES)
        out[f"{s}.mid.block_2"] = (f"{d}.mid_block.resnets.1", _VAE_RES)
        out[f"{s}.mid.attn_1"] = (f"{d}.mid_block.attentions.0", _VAE_ATTN)
        blocks = cfg.vae_num_res_blocks + (part == "decoder")
        for level in range(n):
            ours = level if part == "encoder" else n - 1 - level
            kind, blocks_name = (
                ("down", "down_blocks") if part == "encoder" else ("up", "up_blocks")
            )
            for j in range(blocks):
                out[f"{s}.{kind}.{level}.block.{j}"] = (
                    f"{d}.{blocks_name}.{ours}.resnets.{j}",
                    _VAE_RES,
                )
            resample = "downsample" if part == "encoder" else "upsample"
            sampler = "downsamplers" if part == "encoder" else "upsamplers"
            out[f"{s}.{kind}.{level}.{resample}.conv"] = (
                f"{d}.{blocks_name}.{ours}.{sampler}.0.conv",
                {},
            )
    return out


def official_key_map(config: DecoderConfig, keys) -> dict[str, str]:
    """decoder.ckpt key → our state-dict key for every key the mapping knows (others: absent).

    UNet: openaimodel `input_blocks/middle_block/output_blocks` → diffusers `down/mid/up_blocks`
    (ResBlock `in_layers.0/2, emb_layers.1, out_layers.0/3, skip_connection` → `norm1, conv1,
    time_emb_proj, norm2, conv2, conv_shortcut`; transformer names are shared). VAE: LDM
    `down/up.{i}.block.{j}` → `down/up_blocks` (decoder levels reversed), `nin_shortcut` →
    `conv_shortcut`, mid attention `norm/q/k/v/proj_out` → `group_norm/to_q/to_k/to_v/to_out.0`.
    Vocoder: `ups.{i}` → `upsampler.{i}`."""
    prefixes = {**_unet_prefixes(config), **_vae_prefixes(config)}
    mapping = {}
    for key in keys:
        if key == "scale_factor":
            mapping[key] = key
            continue
        if key.startswith("first_stage_model.vocoder."):
            rest = key[len("first_stage_model.vocoder.") :]
            mapping[key] = "vocoder." + re.sub(r"^ups\.", "upsampler.", rest)
            continue
        module, _, param = key.rpartition(".")
        for cut in range(module.count(".") + 1):
            head = module.rsplit(".", cut)[0] if cut else module
            if head in prefixes:
                ours, renames = prefixes[head]
                tail = module[len(head) + 1 :]
                tail = renames.get(tail, tail)
                mapping[key] = ".".join(p for p in (ours, tail, param) if p)
                break
    return mapping


def _read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such decoder checkpoint (the release's decoder.ckpt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle refusals, truncation
        raise CheckpointError(
            f"{path}: cannot be read as plain tensors with torch.load(weights_only=True) "
            f"({type(err).__name__}: {str(err)[:200]}); use the release's decoder.ckpt"
        ) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return state


def convert_official_state(
    state: dict[str, torch.Tensor], decoder: SemantiCodecDecoder, name: str = "decoder.ckpt"
) -> dict[str, torch.Tensor]:
    """The official `LatentDiffusion` state → `decoder`'s state dict, strictly.

    Raises CheckpointError naming keys the mapping does not know (unexpected), keys of
    `decoder` left unfilled (missing), shape mismatches, or a different noise schedule."""
    cfg = decoder.config
    mapping = official_key_map(cfg, state)
    unexpected = sorted(k for k in state if k not in mapping and not _IGNORED.match(k))
    ours = decoder.state_dict()
    out: dict[str, torch.Tensor] = {}
    for src, dst in mapping.items():
        value = state[src]
        if dst in ours and value.dim() == 4 and ours[dst].dim() == 2:
            value = value[:, :, 0, 0]  # the LDM VAE's 1×1-conv attention → linear
        out[dst] = value
    if "vocoder.mean" in ours:  # SpeechT5HifiGan's input normalisation, unused (normalize_before)
        out.setdefault("vocoder.mean", torch.zeros_like(ours["vocoder.mean"]))
        out.setdefault("vocoder.scale", torch.ones_like(ours["vocoder.scale"]))
    unexpected += sorted(k for k, v in mapping.items() if v not in ours)
    missing = sorted(set(ours) - set(out))
    if unexpected or missing:
        raise CheckpointError(
            f"{name} does not fit this SemantiCodec decoder: missing {missing[:8]}"
            f"{' …' if len(missing) > 8 else ''} ({len(missing)}), unexpected {unexpected[:8]}"
            f"{' …' if len(unexpected) > 8 else ''} ({len(unexpected)}); check the token rate"
        )
    wrong = [
        f"{src} {tuple(state[src].shape)} vs {tuple(ours[dst].shape)}"
        for src, dst in mapping.items()
        if out[dst].numel() != ours[dst].numel()
    ]
    if wrong:
        raise CheckpointError(f"{name}: shapes differ from this decoder config: {wrong[:6]}")
    if "betas" in state:
        betas = 1.0 - decoder.alphas_cumprod / np.concatenate([[1.0], decoder.alphas_cumprod[:-1]])
        if state["betas"].shape != betas.shape or not np.allclose(
            state["betas"].double().numpy(), betas, rtol=1e-5, atol=1e-8
        ):
            raise CheckpointError(f"{name}: its noise schedule differs from the config's")
    return {k: v.reshape(ours[k].shape).to(ours[k].dtype) for k, v in out.items()}


def load_official_decoder(
    path: str | os.PathLike, decoder: SemantiCodecDecoder | None = None
) -> dict[str, torch.Tensor]:
    """Read the release's decoder.ckpt (weights_only) → our state dict; loads it if given.

    Without `decoder`, the official 100 tokens/s sizes are assumed for the checks; pass the
    decoder built for the checkpoint's token rate to check against that and load it."""
    state = _read_checkpoint(path)
    target = decoder if decoder is not None else _meta_decoder(state)
    converted = convert_official_state(state, target, name=str(path))
    if decoder is not None:
        decoder.load_state_dict(converted, strict=True)
    return converted


def _meta_decoder(state: dict[str, torch.Tensor]) -> SemantiCodecDecoder:
    """An official-size decoder on the meta device, its feature width read from the checkpoint."""
    key = "model.diffusion_model.input_blocks.4.2.transformer_blocks.0.attn2.to_k.weight"
    feature_dim = (state[key].shape[1] - 192) if key in state else 1536
    with torch.device("meta"):
        return SemantiCodecDecoder(DecoderConfig(feature_dim=feature_dim))
