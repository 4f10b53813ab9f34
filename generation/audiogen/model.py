"""The official Dasheng-AudioGen model (HF `mispeech/Dasheng-AudioGen`): config and modules.

Architecture facts from the public reference (LayerFusionAudioDiT, UniFlow-Audio lineage):
U-ViT DiT on channels-first latents [B, D, T] with per-block adaLN (gates used as tanh(1 - g) for
attention and (1 - g) for the MLP), RoPE on self-attention, cross-attention on projected text,
a time-aligned context added in every block, a conv output layer; a content adapter that
cross-attends FLAN-T5 states to a learned task instruction and predicts the duration.

Loading and saving use the official folder format (`loader.py`: config layout, weight files,
strict key check); unsupported config variants raise `GenerationError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sonotok.core.config import check_numbers
from sonotok.core.errors import ConfigError
from sonotok.core.hub import CONFIG_NAME, HubMixin, init_derived_buffers, read_config

from ..dit import apply_rope
from ..errors import GenerationError, typed_config
from ..flow import paste_known, sway_sigmas
from .loader import (
    HUB_FILES,
    IGNORED_KEYS,
    OFFICIAL_MODEL_TYPE,
    check_official,
    load_official_state,
    official_config,
    read_official_weights,
)


@dataclass
class AudioGenConfig:
    """Fields of the official config.json (defaults = the released model)."""

    text_encoder_name: str = "google/flan-t5-large"
    tokenizer_name: str = "mispeech/dashengtokenizer"
    use_zero_instruction: bool = False
    instruction_seq_len: int = 14
    task_instruction_dim: int = 1024
    sample_rate: int = 16000
    downsampling_ratio: int = 640
    latent_dim: int = 1280
    content_dim: int = 1024
    frame_resolution: float = 0.005
    duration_offset: float = 1.0
    tokenizer_max_length: int = 512
    dit_embed_dim: int = 1536
    dit_depth: int = 32
    dit_num_heads: int = 24
    dit_mlp_ratio: float = 4.0
    dit_qk_norm: str | None = "layernorm"
    dit_norm_layer: str = "layernorm"
    dit_act_layer: str = "geglu"
    dit_context_norm: bool = True
    dit_time_fusion: str = "ada"
    dit_ada_sola_rank: int | None = 32
    dit_ada_sola_alpha: float | None = 32
    dit_ta_context_dim: int = 1024
    dit_ta_context_fusion: str = "add"
    dit_ta_context_norm: bool = True
    dit_context_dim: int = 1024
    dit_context_fusion: str = "cross"
    dit_context_pe_method: str = "none"
    dit_pe_method: str = "none"
    dit_rope_mode: str = "shared"
    adapter_num_heads: int = 16
    adapter_dropout: float = 0.2
    adapter_duration_grad_scale: float = 0.1
    duration_predictor_filter_channels: int = 512
    duration_predictor_n_layers: int = 5
    duration_predictor_kernel_size: int = 3
    duration_predictor_p_dropout: float = 0.5
    special_tokens: list[str] = field(default_factory=list)
    train_special_tokens: bool = False

    @classmethod
    def from_dict(cls, data: dict, source: str = "config.json") -> AudioGenConfig:
        """The official config.json: keys and value types checked, errors naming the key."""
        if not isinstance(data, dict):
            typed_config(cls, data, source)  # raises, naming what the file holds
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - IGNORED_KEYS)
        if unknown:
            raise GenerationError(f"{source}: unknown Dasheng-AudioGen config keys {unknown}")
        cfg = typed_config(cls, {k: v for k, v in data.items() if k in known}, source)
        sizes = ("sample_rate", "downsampling_ratio", "latent_dim", "content_dim")
        sizes += ("dit_embed_dim", "dit_depth", "dit_num_heads", "adapter_num_heads")
        try:
            check_numbers(cfg, "", positive=sizes)
        except ConfigError as err:
            raise GenerationError(f"{source}: {err}") from None
        supported = {
            "dit_context_fusion": ("cross",),
            "dit_ta_context_fusion": ("add",),
            "dit_pe_method": ("none",),
            "dit_context_pe_method": ("none",),
            "dit_rope_mode": ("shared", "none"),
            "dit_time_fusion": ("ada", "ada_single", "ada_sola", "ada_sola_bias"),
            "dit_norm_layer": ("layernorm",),
            "dit_act_layer": ("geglu", "gelu"),
            "dit_qk_norm": ("layernorm", None),
        }
        for key, allowed in supported.items():
            if getattr(cfg, key) not in allowed:
                raise GenerationError(
                    f"{source}: {key}={getattr(cfg, key)!r} is not supported; supported: {allowed}"
                )
        if data.get("dit_patch_size", 1) != 1 or data.get("dit_input_type", "1d") != "1d":
            raise GenerationError(f"{source}: only 1-D latents with patch size 1 are supported")
        if cfg.special_tokens:
            raise GenerationError(f"{source}: special_tokens are not supported yet")
        return cfg

    @property
    def frame_rate(self) -> int:
        return self.sample_rate // self.downsampling_ratio


def _film(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale) + shift


class _Rotary(nn.Module):
    """Holds the checkpoint's `inv_freq` buffer: 1 / 10000^(2i / head_dim)."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.register_buffer("inv_freq", self._inv_freq())

    def _inv_freq(self) -> Tensor:
        return 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))

    def init_derived_buffers(self) -> None:
        """Recompute the table after meta-device construction (files may omit it)."""
        self.inv_freq = self._inv_freq().to(self.inv_freq.device)

    def angles(self, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        freqs = (
            torch.arange(length, device=device, dtype=torch.float32)[:, None] * self.inv_freq[None]
        )
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()


class _Attention(nn.Module):
    """x [B, T, E], context [B, S, C] (None: self), key_mask [B, S] -> [B, T, E]."""

    def __init__(
        self, dim: int, heads: int, context_dim: int | None, qk_norm: str | None, rope: bool
    ) -> None:
        super().__init__()
        self.heads = heads
        kv = dim if context_dim is None else context_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(kv, dim, bias=False)
        self.to_v = nn.Linear(kv, dim, bias=False)
        head_dim = dim // heads
        self.norm_q = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.norm_k = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rotary = _Rotary(head_dim) if rope else None

    def forward(
        self, x: Tensor, context: Tensor | None = None, key_mask: Tensor | None = None
    ) -> Tensor:
        b, t, _ = x.shape
        kv = x if context is None else context

        def split(y: Tensor) -> Tensor:
            return y.view(b, y.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = (
            self.norm_q(split(self.to_q(x))),
            self.norm_k(split(self.to_k(kv))),
            split(self.to_v(kv)),
        )
        if self.rotary is not None:
            cos, sin = self.rotary.angles(t, x.device)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        mask = None if key_mask is None else key_mask.bool()[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, t, -1))


class _GatedProj(nn.Module):
    def __init__(self, dim: int, inner: int, gated: bool) -> None:
        super().__init__()
        self.gated = gated
        self.proj = nn.Linear(dim, inner * (2 if gated else 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x)
        if self.gated:
            h, gate = h.chunk(2, dim=-1)
            return h * F.gelu(gate)
        return F.gelu(h)


class _FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float, act: str) -> None:
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.ModuleList(
            [_GatedProj(dim, inner, act == "geglu"), nn.Identity(), nn.Linear(inner, dim)]
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class _AdaLN(nn.Module):
    """time token [B, E] (+ shared projection [B, 6E]) -> [B, 6, E]."""

    def __init__(self, dim: int, mode: str, rank: int | None, alpha: float | None) -> None:
        super().__init__()
        self.mode = mode
        if mode == "ada":
            self.time_ada = nn.Linear(dim, 6 * dim)
        if mode in ("ada_single", "ada_sola_bias"):
            self.scale_shift_table = nn.Parameter(torch.zeros(6, dim))
        if mode in ("ada_sola", "ada_sola_bias"):
            self.lora_a = nn.Linear(dim, rank * 6, bias=False)
            self.lora_b = nn.Linear(rank * 6, dim * 6, bias=False)
            self.scaling = alpha / rank

    def forward(self, token: Tensor, shared: Tensor | None) -> Tensor:
        b = token.shape[0]
        if self.mode == "ada":
            return self.time_ada(token).view(b, 6, -1)
        mod = shared
        if self.mode in ("ada_sola", "ada_sola_bias"):
            mod = mod + self.lora_b(self.lora_a(token)) * self.scaling
        mod = mod.view(b, 6, -1)
        if self.mode != "ada_sola":
            mod = mod + self.scale_shift_table[None]
        return mod


class _Block(nn.Module):
    """One LayerFusion DiT block; x [B, T, E]."""

    def __init__(self, cfg: AudioGenConfig, skip: bool) -> None:
        super().__init__()
        e = cfg.dit_embed_dim
        self.norm1 = nn.LayerNorm(e)
        self.attn = _Attention(
            e, cfg.dit_num_heads, None, cfg.dit_qk_norm, cfg.dit_rope_mode == "shared"
        )
        self.cross_attn = _Attention(e, cfg.dit_num_heads, e, cfg.dit_qk_norm, False)
        self.norm2 = nn.LayerNorm(e)
        self.norm_context = nn.LayerNorm(e) if cfg.dit_context_norm else nn.Identity()
        self.norm3 = nn.LayerNorm(e)
        self.mlp = _FeedForward(e, cfg.dit_mlp_ratio, cfg.dit_act_layer)
        self.adaln = _AdaLN(e, cfg.dit_time_fusion, cfg.dit_ada_sola_rank, cfg.dit_ada_sola_alpha)
        if skip:
            self.skip_norm = nn.LayerNorm(2 * e)
            self.skip_linear = nn.Linear(2 * e, e)
        else:
            self.skip_linear = None
        self.ta_context_projection = nn.Linear(cfg.dit_ta_context_dim, e, bias=False)
        self.ta_context_norm = (
            nn.LayerNorm(cfg.dit_ta_context_dim) if cfg.dit_ta_context_norm else nn.Identity()
        )

    def forward(
        self, x, ta_context, token, shared, context, x_mask, context_mask, skip=None
    ) -> Tensor:
        if self.skip_linear is not None:
            x = self.skip_linear(self.skip_norm(torch.cat([x, skip], dim=-1)))
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaln(token, shared).chunk(6, dim=1)
        x = x + torch.tanh(1 - gate1) * self.attn(
            _film(self.norm1(x), shift1, scale1), None, x_mask
        )
        ta = self.ta_context_projection(self.ta_context_norm(ta_context))
        if ta.shape[1] < x.shape[1]:
            ta = F.pad(ta, (0, 0, 1, 0))
        x = x + ta
        x = x + self.cross_attn(self.norm2(x), self.norm_context(context), context_mask)
        return x + (1 - gate2) * self.mlp(_film(self.norm3(x), shift2, scale2))


class _FinalBlock(nn.Module):
    def __init__(self, e: int, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(e)
        self.linear = nn.Linear(e, d)
        self.final_layer = nn.Conv1d(d, d, 3, padding=1)

    def forward(self, x: Tensor, ada: Tensor) -> Tensor:
        shift, scale = ada.view(x.shape[0], 2, -1).chunk(2, dim=1)
        return self.final_layer(self.linear(_film(self.norm(x), shift, scale)).transpose(1, 2))


class _Namespace(nn.Module):
    """A parameter-free container that reproduces a checkpoint's key prefix."""


def _timestep_features(t: Tensor, dim: int = 256) -> Tensor:
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class LayerFusionDiT(nn.Module):
    """forward(x [B, D, T], timesteps (0-dim: truncated to an integer step, as the reference),
    ta_context [B, T, C_ta], context [B, L, C], x_mask [B, T], context_mask [B, L]) -> [B, D, T]."""

    def __init__(self, cfg: AudioGenConfig) -> None:
        super().__init__()
        e, d = cfg.dit_embed_dim, cfg.latent_dim
        self.patch_embed = _Namespace()
        self.patch_embed.proj = nn.Conv1d(d, e, 1)
        self.time_embed = _Namespace()
        self.time_embed.mlp = nn.Sequential(nn.Linear(256, e), nn.SiLU(), nn.Linear(e, e))
        self.time_ada_final = nn.Linear(e, 2 * e)
        self.time_ada = nn.Linear(e, 6 * e) if cfg.dit_time_fusion != "ada" else None
        self.context_embed = nn.Sequential(
            nn.Linear(cfg.dit_context_dim, e), nn.SiLU(), nn.Linear(e, e)
        )
        self.in_blocks = nn.ModuleList(_Block(cfg, False) for _ in range(cfg.dit_depth // 2))
        self.mid_block = _Block(cfg, False)
        self.out_blocks = nn.ModuleList(_Block(cfg, True) for _ in range(cfg.dit_depth // 2))
        self.final_block = _FinalBlock(e, d)

    def forward(self, x, timesteps, ta_context, context, x_mask=None, context_mask=None) -> Tensor:
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(x.shape[0]).long()
        h = self.patch_embed.proj(x).transpose(1, 2)
        ctx = self.context_embed(context)
        token = F.silu(self.time_embed.mlp(_timestep_features(timesteps).to(h.dtype)))
        final_ada = self.time_ada_final(token)
        shared = self.time_ada(token) if self.time_ada is not None else None
        args = (ta_context, token, shared, ctx, x_mask, context_mask)
        skips = []
        for block in self.in_blocks:
            h = block(h, *args)
            skips.append(h)
        h = self.mid_block(h, *args)
        for block in self.out_blocks:
            h = block(h, *args, skip=skips.pop())
        return self.final_block(h, final_ada)


class _LayerNormChannels(nn.LayerNorm):
    """LayerNorm over dim 1 of [B, C, T] (eps 1e-12, as the reference duration predictor)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, -1)).transpose(1, -1)


class DurationPredictor(nn.Module):
    """Conv stack over text tokens: x [B, L, C], mask [B, L] -> log(1 + duration) [B, L, 1]."""

    def __init__(
        self, channels: int, filters: int, layers: int, kernel: int, dropout: float
    ) -> None:
        super().__init__()
        pad = (kernel - 1) // 2
        self.conv = nn.ModuleList(
            nn.Sequential(
                nn.ConstantPad1d((pad, pad), 0),
                nn.Conv1d(channels if i == 0 else filters, filters, kernel),
                nn.ReLU(),
                _LayerNormChannels(filters),
                nn.Dropout(dropout),
            )
            for i in range(layers)
        )
        self.linear = nn.Linear(filters, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        m = mask[:, None].float()
        x = x.transpose(1, 2)
        for layer in self.conv:
            x = layer(x) * m
        return self.linear(x.transpose(1, 2)) * m.transpose(1, 2)


class ContentAdapter(nn.Module):
    """Text states attend to the task instruction; predicts global and per-token durations.

    forward(content [B, L, C], mask [B, L], prefix [B, P, C_p], prefix_mask [B, P])
      -> content [B, L, C_out], global log-duration [B], local log-durations [B, L].
    """

    def __init__(self, cfg: AudioGenConfig) -> None:
        super().__init__()
        c = cfg.content_dim
        self.attn = nn.MultiheadAttention(
            c,
            cfg.adapter_num_heads,
            dropout=cfg.adapter_dropout,
            kdim=cfg.task_instruction_dim,
            vdim=cfg.task_instruction_dim,
            batch_first=True,
        )
        self.duration_predictor = DurationPredictor(
            c,
            cfg.duration_predictor_filter_channels,
            cfg.duration_predictor_n_layers,
            cfg.duration_predictor_kernel_size,
            cfg.duration_predictor_p_dropout,
        )
        self.global_duration_mlp = nn.Sequential(
            nn.Linear(c, c), nn.ReLU(), nn.Dropout(cfg.adapter_dropout), nn.Linear(c, 1)
        )
        self.norm = nn.LayerNorm(c)
        self.content_proj = nn.Conv1d(c, c, 1)

    def forward(self, content, mask, prefix, prefix_mask) -> tuple[Tensor, Tensor, Tensor]:
        attended, _ = self.attn(
            content, prefix, prefix, key_padding_mask=~prefix_mask.bool(), need_weights=False
        )
        x = self.norm(attended * mask[..., None].float() + content)
        pooled = (x * mask[..., None].float()).sum(1) / mask.sum(1, keepdim=True).float()
        global_duration = self.global_duration_mlp(pooled).squeeze(-1)
        local_duration = self.duration_predictor(x, mask).squeeze(-1)
        return self.content_proj(x.transpose(1, 2)).transpose(1, 2), global_duration, local_duration


class DashengAudioGen(HubMixin, nn.Module):
    """Weights of `mispeech/Dasheng-AudioGen` (text encoder and audio tokenizer load separately).

    `from_pretrained` / `save_pretrained` read and write the official folder format, so a saved
    model loads wherever the released one does; `kept_config` holds the loaded config.json's
    keys that this implementation does not use, written back unchanged.
    """

    config_class = AudioGenConfig
    model_type = OFFICIAL_MODEL_TYPE
    hub_files = HUB_FILES

    def __init__(self, config: AudioGenConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = LayerFusionDiT(config)
        self.content_adapter = ContentAdapter(config)
        self.content_encoder = _Namespace()
        self.content_encoder.text_encoder = _Namespace()
        self.content_encoder.text_encoder.proj = nn.Linear(config.content_dim, config.content_dim)
        self.dummy_param = nn.Parameter(torch.empty(0))
        self.dummy_nta_embed = nn.Parameter(torch.zeros(config.content_dim))
        self.dummy_ta_embed = nn.Parameter(torch.zeros(config.content_dim))
        self.register_buffer(
            "instruction_embedding",
            torch.zeros(1, config.instruction_seq_len, config.task_instruction_dim),
        )
        self.register_buffer(
            "instruction_lengths", torch.full((1,), config.instruction_seq_len, dtype=torch.long)
        )
        self.kept_config: dict[str, Any] = {}

    def condition(self, text_states: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """T5 states [B, L, 1024] -> (content [B, L, C], mask [B, L], predicted frames [B])."""
        content = self.content_encoder.text_encoder.proj(text_states)
        b = content.shape[0]
        if self.config.use_zero_instruction:
            prefix = content.new_zeros(b, 1, self.config.task_instruction_dim)
            prefix_mask = torch.ones(b, 1, dtype=torch.bool, device=content.device)
        else:
            prefix = self.instruction_embedding.to(content.dtype).expand(b, -1, -1)
            lengths = self.instruction_lengths.expand(b)
            prefix_mask = (
                torch.arange(prefix.shape[1], device=content.device)[None] < lengths[:, None]
            )
        content, global_log, _ = self.content_adapter(content, text_mask, prefix, prefix_mask)
        seconds = torch.exp(global_log) - self.config.duration_offset
        frames = torch.round(seconds * self.config.frame_rate).long()
        return content, text_mask, frames

    @torch.no_grad()
    def sample(
        self,
        content: Tensor,
        content_mask: Tensor,
        frames: Tensor,
        noise: Tensor,
        scheduler,
        guidance_scale: float = 5.0,
        uncond: tuple[Tensor, Tensor] | None = None,
        known: Tensor | None = None,
        known_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Euler sampling as the reference: noise [B, D, T] -> latents [B, T, D] and mask [B, T].

        CFG against zeroed text and zeroed time-aligned context (or `uncond` text states).
        Inpainting / continuation (`sonotok.generation.flow.paste_known`): where `known_mask`
        [B, T] is True the state is the `known` latents [B, T, D] noised to the current sigma,
        and the result there equals `known`.
        """
        b, _, length = noise.shape
        x_mask = torch.arange(length, device=noise.device)[None] < frames[:, None]
        ta = self.dummy_ta_embed.to(content.dtype).expand(b, length, -1)
        context, context_mask = content, content_mask
        cfg = guidance_scale > 1.0
        if cfg:
            u_ctx, u_mask = (
                uncond if uncond is not None else (torch.zeros_like(content), content_mask)
            )
            length_c = max(context.shape[1], u_ctx.shape[1])
            context, context_mask = _pad(context, context_mask, length_c)
            u_ctx, u_mask = _pad(u_ctx, u_mask, length_c)
            ta_in = torch.cat([torch.zeros_like(ta), ta])
            context, context_mask = torch.cat([u_ctx, context]), torch.cat([u_mask, context_mask])
            mask_in = torch.cat([x_mask, x_mask])
        x = noise
        keep = None if known_mask is None else known_mask[:, None, :].to(noise.device)
        if keep is not None:
            known = known.transpose(1, 2).to(noise)
        scheduler._step_index = None  # restart the diffusers scheduler at its first sigma
        for i, timestep in enumerate(scheduler.timesteps):
            if keep is not None:
                x = paste_known(x, known, noise, keep, scheduler.sigmas[i])
            if cfg:
                v_u, v_c = self.backbone(
                    torch.cat([x, x]), timestep, ta_in, context, mask_in, context_mask
                ).chunk(2)
                v = v_u + guidance_scale * (v_c - v_u)
            else:
                v = self.backbone(x, timestep, ta, context, x_mask, context_mask)
            x = scheduler.step(v, timestep, x, return_dict=False)[0]
        if keep is not None:
            x = torch.where(keep, known, x)
        return x.transpose(1, 2), x_mask

    # ---- the official folder format (HubMixin hooks) -----------------------------------------
    def config_dict(self) -> dict:
        return official_config(dataclasses.asdict(self.config), self.kept_config)

    @classmethod
    def config_from_dict(cls, values: dict, where: str) -> AudioGenConfig:
        check_official(values, where)
        return AudioGenConfig.from_dict(values, where)

    @classmethod
    def load_path(cls, path: Path, source: str) -> DashengAudioGen:
        """config.json + model.safetensors (or shards) of an official folder, strictly."""
        values = read_config(path)
        config = cls.config_from_dict(values, str(path / CONFIG_NAME))
        model = cls.from_state_dict(config, read_official_weights(path), str(path))
        model.kept_config = {k: values[k] for k in sorted(IGNORED_KEYS) if k in values}
        return model

    @classmethod
    def from_state_dict(
        cls, config: AudioGenConfig, state: dict[str, Tensor], source: str
    ) -> DashengAudioGen:
        """Build on the meta device and load strictly; derived RoPE tables may be absent."""
        with torch.device("meta"):
            model = cls(config)
        model.to_empty(device="cpu")
        init_derived_buffers(model)
        load_official_state(model, state, source)
        return model.eval()


def _pad(context: Tensor, mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
    extra = length - context.shape[1]
    if extra == 0:
        return context, mask
    return F.pad(context, (0, 0, 0, extra)), F.pad(mask, (0, extra), value=False)


def official_sigmas(num_steps: int, sway_coef: float | None) -> list[float]:
    """The reference schedule, in float32 as it computes it: sway sigmas without the final 0
    (whose step is a no-op there) or linspace(1, 1/n, n)."""
    if sway_coef:
        return sway_sigmas(num_steps, sway_coef, dtype=torch.float32)[:-1].tolist()
    return torch.linspace(1.0, 1.0 / num_steps, num_steps).tolist()
