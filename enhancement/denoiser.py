"""The latent denoiser: a small Transformer mapping noisy latents to clean latents.

DashengTokenizer paper (speech enhancement): 3 pre-LN Transformer layers on the
tokenizer's 25 Hz latents, trained with MSE against the clean latents, decoded by
the tokenizer's own decoder. The official dasheng-denoiser uses the same block
(width 768, 8 heads, MLP ratio 2, qkv bias, LayerNorm eps 1e-5) plus a final LayerNorm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sonotok.core.config import check_numbers, dataclass_from_dict
from sonotok.core.errors import CheckpointError, ConfigError
from sonotok.core.hub import HubMixin

MODEL_TYPE = "sonotok-enhancement"


@dataclass
class DenoiserConfig:
    """Hyper-parameters of `LatentDenoiser` (defaults: paper size on 1280-d latents)."""

    latent_dim: int = 1280
    dim: int = 1280  # Transformer width; a Linear maps latent_dim ↔ dim when they differ
    num_layers: int = 3  # DashengTokenizer paper, speech enhancement
    num_heads: int = 16
    mlp_ratio: float = 2.0  # as dasheng-denoiser
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-5  # torch default, as dasheng-denoiser's blocks
    final_norm: bool = True  # LayerNorm after the blocks (dasheng-denoiser)
    residual: bool = (
        False  # predict clean = noisy + correction (zero-initialised: starts at identity)
    )
    attention_window: int | None = None  # None: global; k: each frame sees frames within ±k
    dropout: float = 0.0

    def __post_init__(self):
        check_numbers(
            self,
            "",
            positive=("latent_dim", "dim", "num_heads", "mlp_ratio", "layer_norm_eps"),
            fraction=("dropout",),
        )
        if self.dim % self.num_heads:
            raise ConfigError(
                f"denoiser dim {self.dim} is not divisible by num_heads {self.num_heads}"
            )
        if self.num_layers < 1:
            raise ConfigError(f"denoiser num_layers={self.num_layers}; it needs at least 1")
        if self.attention_window is not None and self.attention_window < 1:
            raise ConfigError(
                "attention_window must be a positive number of frames or null (global)"
            )

    @property
    def receptive_radius(self) -> int | None:
        """Frames on each side that can influence an output frame (None: unbounded)."""
        if self.attention_window is None:
            return None
        return self.attention_window * self.num_layers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "denoiser config") -> DenoiserConfig:
        """Keys and value types checked (sonotok.core.config); errors name `source`."""
        return dataclass_from_dict(cls, values, source)

    @classmethod
    def tiny(cls, latent_dim: int = 32) -> DenoiserConfig:
        """A few-thousand-parameter denoiser for tests."""
        return cls(latent_dim=latent_dim, dim=32, num_layers=2, num_heads=2, residual=True)


class SelfAttention(nn.Module):
    """x (Tensor): (B, T, dim), mask (Tensor): (B, 1, T, T) bool, True = attend → (B, T, dim)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            self.qkv(x).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DenoiserBlock(nn.Module):
    """Pre-LN Transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        d, eps = config.dim, config.layer_norm_eps
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attn = SelfAttention(d, config.num_heads, config.qkv_bias, config.dropout)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = FeedForward(d, int(d * config.mlp_ratio), config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


def attention_mask(
    length: int, key_mask: torch.Tensor | None, window: int | None, device: torch.device
) -> torch.Tensor | None:
    """(B or 1, 1, T, T) bool attention mask from key padding and an optional local window.

    Every query may always attend to itself, so padded positions never see an empty row.
    """
    if key_mask is None and window is None:
        return None
    pos = torch.arange(length, device=device)
    allowed = torch.ones(length, length, dtype=torch.bool, device=device)
    if window is not None:
        allowed = (pos[:, None] - pos[None, :]).abs() <= window
    allowed = allowed[None, None]
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]
    return allowed | torch.eye(length, dtype=torch.bool, device=device)


class LatentDenoiser(HubMixin, nn.Module):
    """Noisy latents (B, T, latent_dim) → clean latents (B, T, latent_dim).

    >>> model = LatentDenoiser(DenoiserConfig())
    >>> clean = model(noisy_latents, mask)  # mask (B, T) bool, True = a real frame
    """

    def __init__(self, config: DenoiserConfig | None = None):
        super().__init__()
        self.config = config = config or DenoiserConfig()
        project = config.dim != config.latent_dim
        self.input_proj = nn.Linear(config.latent_dim, config.dim) if project else nn.Identity()
        self.blocks = nn.ModuleList(DenoiserBlock(config) for _ in range(config.num_layers))
        self.norm = (
            nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
            if config.final_norm
            else nn.Identity()
        )
        if project or config.residual:
            self.output_proj = nn.Linear(config.dim, config.latent_dim)
            if config.residual:  # starts as the identity map; training learns the correction
                nn.init.zeros_(self.output_proj.weight)
                nn.init.zeros_(self.output_proj.bias)
        else:
            self.output_proj = nn.Identity()

    def forward(self, latents: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """latents (Tensor): (B, T, latent_dim); mask (Tensor): (B, T) bool → (B, T, latent_dim),
        zero at padded frames."""
        if latents.shape[-1] != self.config.latent_dim:
            raise ValueError(
                f"latents have {latents.shape[-1]} channels; this denoiser expects {self.config.latent_dim} "
                "(was it trained for another tokenizer?)"
            )
        if mask is not None and bool(mask.all()):
            mask = None
        attn_mask = attention_mask(
            latents.shape[1], mask, self.config.attention_window, latents.device
        )
        h = self.input_proj(latents)
        for block in self.blocks:
            h = block(h, attn_mask)
        out = self.output_proj(self.norm(h))
        if self.config.residual:
            out = latents + out
        return out if mask is None else out * mask[..., None]

    # ---- checkpoints (sonotok.core.hub.HubMixin) -----------------------------------------
    # `from_pretrained(name_or_path, device=None, **hub)`: the denoiser of an enhancement
    # folder (see `EnhancementPipeline.save_pretrained`), which also names its tokenizer.
    config_class = DenoiserConfig
    model_type = MODEL_TYPE

    def config_dict(self) -> dict:
        """{"model_type": ..., "denoiser": {...}} (the pipeline adds "tokenizer")."""
        return {"model_type": MODEL_TYPE, "denoiser": self.config.to_dict()}

    @classmethod
    def config_from_dict(cls, values: dict, where: str) -> DenoiserConfig:
        if values.get("model_type") != MODEL_TYPE:
            raise CheckpointError(
                f"{where} has model_type {values.get('model_type')!r}, not {MODEL_TYPE!r}; "
                "pass a folder written by EnhancementPipeline.save_pretrained"
            )
        return DenoiserConfig.from_dict(values.get("denoiser", {}), f"{where}: denoiser")


def latent_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, kind: str = "mse"
) -> torch.Tensor:
    """Mean squared (or absolute) error over real frames: (B, T, D) × 2, mask (B, T) → scalar."""
    if kind == "mse":
        err = (prediction - target).square()
    elif kind == "l1":
        err = (prediction - target).abs()
    else:
        raise ConfigError(f"loss {kind!r} unknown; choose 'mse' (paper) or 'l1'")
    if mask is None:
        return err.mean()
    weights = mask[..., None].to(err.dtype)
    return (err * weights).sum() / (weights.sum() * err.shape[-1]).clamp(min=1)
