"""Diffusion Transformer over 1-D latent sequences [B, T, D] with text cross-attention.

Time enters through adaLN (per-block, or one shared projection plus a per-block low-rank
update), text through cross-attention, positions through RoPE on the self-attention queries and
keys; QK-norm; `F.scaled_dot_product_attention`; optional U-ViT long skips; key padding masks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from sonotok.core.config import check_numbers
from sonotok.core.hub import HubMixin

from .errors import GenerationError, typed_config

__all__ = ["DiT", "DiTConfig", "apply_rope", "rope_angles", "typed_config"]


@dataclass
class DiTConfig:
    """Constructor arguments of `DiT`; `save_pretrained` writes them as config.json."""

    latent_dim: int = 1280  # DashengTokenizer latent channels
    hidden_size: int = 1536  # paper: width 1536 for d=1280 (width >= latent dim)
    depth: int = 11  # paper: 11 layers, ~750M parameters
    num_heads: int = 24
    mlp_ratio: float = 4.0
    mlp_type: Literal["geglu", "gelu"] = "geglu"
    context_dim: int = 384  # all-MiniLM-L6-v2 token states
    context_norm: bool = True
    qk_norm: Literal["layernorm", "rmsnorm", "none"] = "layernorm"
    qkv_bias: bool = False
    adaln: Literal["full", "shared_lowrank"] = "shared_lowrank"
    adaln_rank: int = 32  # Dasheng-AudioGen ada_sola_rank
    adaln_alpha: float = 32.0  # Dasheng-AudioGen ada_sola_alpha
    long_skip: bool = True  # U-ViT skips from the first half of the blocks to the second
    rope_theta: float = 10000.0
    time_freq_dim: int = 256

    def __post_init__(self) -> None:
        sizes = ("latent_dim", "hidden_size", "depth", "num_heads", "context_dim")
        check_numbers(  # ConfigError: prefixed with the section by the typed-config builder
            self, "", positive=(*sizes, "mlp_ratio", "adaln_rank", "rope_theta", "time_freq_dim")
        )
        if self.hidden_size % self.num_heads:
            raise GenerationError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if (self.hidden_size // self.num_heads) % 2:
            raise GenerationError("head dim (hidden_size / num_heads) must be even for RoPE")
        for name, allowed in (
            ("mlp_type", ("geglu", "gelu")),
            ("qk_norm", ("layernorm", "rmsnorm", "none")),
            ("adaln", ("full", "shared_lowrank")),
        ):
            if getattr(self, name) not in allowed:
                raise GenerationError(f"{name}={getattr(self, name)!r}; expected one of {allowed}")

    @classmethod
    def from_dict(cls, data: dict, source: str = "DiT config") -> DiTConfig:
        """Build from a dict: a non-mapping, unknown keys and wrong value types are errors
        naming `source` and the key."""
        return typed_config(cls, data, source)

    @classmethod
    def tiny(cls, latent_dim: int = 16, context_dim: int = 384) -> DiTConfig:
        """A few-thousand-parameter model for tests."""
        return cls(
            latent_dim=latent_dim,
            hidden_size=32,
            depth=3,
            num_heads=4,
            mlp_ratio=2.0,
            context_dim=context_dim,
            adaln_rank=4,
            adaln_alpha=4.0,
            time_freq_dim=32,
        )


def _qk_norm(kind: str, dim: int) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=1e-6)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=1e-6)
    return nn.Identity()


def rope_angles(
    length: int, head_dim: int, theta: float, device: torch.device
) -> tuple[Tensor, Tensor]:
    """cos, sin of shape [length, head_dim] for rotate-half RoPE at positions 0..length-1."""
    inv_freq = theta ** (
        -torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim
    )
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x [B, H, T, hd] by angles cos/sin [T, hd]."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None.

    x: [B, T, C]; context: [B, S, C_ctx]; key_mask: [B, S] bool, True = attend.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        context_dim: int | None = None,
        qkv_bias: bool = False,
        qk_norm: str = "layernorm",
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        kv_dim = dim if context_dim is None else context_dim
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(kv_dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(kv_dim, dim, bias=qkv_bias)
        self.q_norm = _qk_norm(qk_norm, self.head_dim)
        self.k_norm = _qk_norm(qk_norm, self.head_dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        key_mask: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        b, t, _ = x.shape
        kv = x if context is None else context

        def heads(y: Tensor) -> Tensor:
            return y.view(b, -1, self.num_heads, self.head_dim).transpose(1, 2)

        q = self.q_norm(heads(self.to_q(x)))
        k = self.k_norm(heads(self.to_k(kv)))
        v = heads(self.to_v(kv))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """GEGLU or GELU MLP: [B, T, C] -> [B, T, C]."""

    def __init__(self, dim: int, mlp_ratio: float, mlp_type: str) -> None:
        super().__init__()
        inner = int(dim * mlp_ratio)
        self.gated = mlp_type == "geglu"
        self.fc1 = nn.Linear(dim, inner * (2 if self.gated else 1))
        self.fc2 = nn.Linear(inner, dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        if self.gated:
            h, gate = h.chunk(2, dim=-1)
            h = h * F.gelu(gate)
        else:
            h = F.gelu(h)
        return self.fc2(h)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x [B, T, C] * (1 + scale[B, C]) + shift[B, C]."""
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Self-attention (adaLN, RoPE) -> cross-attention on text -> MLP (adaLN)."""

    def __init__(self, cfg: DiTConfig, skip: bool = False) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.skip = nn.Sequential(nn.LayerNorm(2 * h), nn.Linear(2 * h, h)) if skip else None
        self.norm1 = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(h, cfg.num_heads, None, cfg.qkv_bias, cfg.qk_norm)
        self.norm2 = nn.LayerNorm(h, eps=1e-6)
        self.cross_attn = Attention(h, cfg.num_heads, h, cfg.qkv_bias, cfg.qk_norm)
        self.norm3 = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.mlp = FeedForward(h, cfg.mlp_ratio, cfg.mlp_type)
        if cfg.adaln == "full":
            self.ada = nn.Linear(h, 6 * h)
        else:  # shared projection (in DiT) + this low-rank per-block update
            self.ada_down = nn.Linear(h, cfg.adaln_rank, bias=False)
            self.ada_up = nn.Linear(cfg.adaln_rank, 6 * h, bias=False)
            self.ada_scaling = cfg.adaln_alpha / cfg.adaln_rank

    def modulation(self, c: Tensor, shared: Tensor | None) -> Tensor:
        """c: SiLU(time embedding) [B, C]; shared: [B, 6C] or None -> [B, 6, C]."""
        if shared is None:
            mod = self.ada(c)
        else:
            mod = shared + self.ada_up(self.ada_down(c)) * self.ada_scaling
        return mod.view(c.shape[0], 6, -1)

    def forward(
        self,
        x: Tensor,
        c: Tensor,
        shared: Tensor | None,
        context: Tensor,
        x_mask: Tensor | None,
        context_mask: Tensor | None,
        rope: tuple[Tensor, Tensor],
        skip: Tensor | None = None,
    ) -> Tensor:
        if self.skip is not None:
            x = self.skip(torch.cat([x, skip], dim=-1))
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c, shared).unbind(1)
        x = x + gate1[:, None] * self.attn(
            modulate(self.norm1(x), shift1, scale1), None, x_mask, rope
        )
        x = x + self.cross_attn(self.norm2(x), context, context_mask)
        return x + gate2[:, None] * self.mlp(modulate(self.norm3(x), shift2, scale2))


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of t*1000 (t in [0, 1]) : [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class DiT(HubMixin, nn.Module):
    """Velocity model v(x_t, t, text) for rectified flow on latents.

    forward(x [B,T,D], t [B] in [0,1] (1 = noise), context [B,L,C_ctx],
            x_mask [B,T] bool (True = real frame), context_mask [B,L] bool) -> [B,T,D].
    Outputs at padded frames are zero and valid outputs do not depend on padded inputs.
    `save_pretrained` / `from_pretrained` (folder or hub id, strict, meta-device init) come
    from `sonotok.core.hub.HubMixin`.
    """

    config_class = DiTConfig
    model_type = "sonotok_dit"

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden_size
        self.gradient_checkpointing = False
        self.proj_in = nn.Linear(config.latent_dim, h)
        self.time_embed = nn.Sequential(
            nn.Linear(config.time_freq_dim, h), nn.SiLU(), nn.Linear(h, h)
        )
        self.context_embed = nn.Sequential(
            nn.LayerNorm(config.context_dim) if config.context_norm else nn.Identity(),
            nn.Linear(config.context_dim, h),
            nn.SiLU(),
            nn.Linear(h, h),
        )
        self.shared_ada = nn.Linear(h, 6 * h) if config.adaln == "shared_lowrank" else None
        half = config.depth // 2 if config.long_skip else 0
        self.num_skips = half
        self.blocks = nn.ModuleList(
            DiTBlock(config, skip=i >= config.depth - half) for i in range(config.depth)
        )
        self.final_ada = nn.Linear(h, 2 * h)
        self.norm_out = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(h, config.latent_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier linears; zero adaLN and output projections (each block starts as identity)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.time_embed[0].weight, std=0.02)
        nn.init.normal_(self.time_embed[2].weight, std=0.02)
        zero = [self.final_ada, self.proj_out]
        if self.shared_ada is not None:
            zero.append(self.shared_ada)
        for block in self.blocks:
            zero.append(block.ada if self.shared_ada is None else block.ada_up)
        for module in zero:
            nn.init.zeros_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute block activations in backward to save memory."""
        self.gradient_checkpointing = enabled

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        context: Tensor,
        x_mask: Tensor | None = None,
        context_mask: Tensor | None = None,
    ) -> Tensor:
        b, length, d = x.shape
        if d != self.config.latent_dim:
            raise GenerationError(
                f"latents have {d} channels, model expects {self.config.latent_dim}"
            )
        if context.shape[-1] != self.config.context_dim:
            raise GenerationError(
                f"text states have {context.shape[-1]} channels, model expects "
                f"{self.config.context_dim}; use the text encoder the model was trained with"
            )
        if t.ndim == 0:
            t = t.expand(b)
        if x_mask is not None:
            x = x * x_mask[..., None].to(x.dtype)
        hidden = self.proj_in(x)
        c = F.silu(
            self.time_embed(timestep_embedding(t, self.config.time_freq_dim).to(hidden.dtype))
        )
        shared = None if self.shared_ada is None else self.shared_ada(c)
        ctx = self.context_embed(context)
        rope = rope_angles(
            length,
            self.config.hidden_size // self.config.num_heads,
            self.config.rope_theta,
            x.device,
        )
        skips: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            skip = skips.pop() if block.skip is not None else None
            args = (hidden, c, shared, ctx, x_mask, context_mask, rope, skip)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden = checkpoint(block, *args, use_reentrant=False)
            else:
                hidden = block(*args)
            if i < self.num_skips:
                skips.append(hidden)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        out = self.proj_out(modulate(self.norm_out(hidden), shift, scale))
        if x_mask is not None:
            out = out * x_mask[..., None].to(out.dtype)
        return out

    def num_parameters(self) -> int:
        """Total parameter count."""
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def config_from_dict(cls, values: dict, where: str) -> DiTConfig:
        """config.json's settings, every key and type checked (GenerationError naming `where`);
        folders saved before `model_type` was written load as a DiT."""
        values = dict(values)
        model_type = values.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise GenerationError(
                f"{where}: model_type {model_type!r} is not a sonotok DiT ({cls.model_type!r})"
            )
        return DiTConfig.from_dict(values, where)
