"""The frozen semantic branch: a Dasheng audio ViT over 64-bin log-mel patches.

Dasheng (RicherMans/Dasheng) encodes 16 kHz audio as 25 Hz tokens: a 64-mel dB
front end, BatchNorm over mel bins, 64×4 patches (one frequency row), pre-LN ViT
blocks. Audio longer than `target_length` mel frames (10.08 s) is cut into chunks
that run independently with position embeddings restarting at 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sonotok.core.config import check_numbers, dataclass_from_dict
from sonotok.core.errors import CheckpointError, ConfigError
from sonotok.core.hub import HubMixin, rename_keys

from .checkpoints import DASHENG_ENCODER_KEYS
from .mel import MelSpectrogram, num_frames, power_to_db


@dataclass
class SemanticEncoderConfig:
    """Dasheng encoder hyper-parameters (defaults: Dasheng-0.6B, as in DashengTokenizer)."""

    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    init_values: float | None = None  # LayerScale; None in all released Dasheng models
    target_length: int = 1008  # mel frames per chunk (10.08 s), Dasheng's training crop
    patch_frames: int = 4  # mel frames per token: 100 Hz / 4 = 25 Hz
    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 512
    win_length: int = 512
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float = 8000.0
    top_db: float = 120.0

    def __post_init__(self):
        sizes = [f.name for f in fields(self) if type(getattr(self, f.name)) is int]
        check_numbers(self, "", positive=(*sizes, "mlp_ratio"))
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}"
            )

    # Released Dasheng sizes (Dasheng paper, Table 1).
    @classmethod
    def preset(cls, name: str) -> SemanticEncoderConfig:
        sizes = {
            "base": dict(embed_dim=768, depth=12, num_heads=12),
            "0.6B": dict(embed_dim=1280, depth=32, num_heads=16),
            "1.2B": dict(embed_dim=1536, depth=40, num_heads=24),
        }
        key = name.removeprefix("dasheng-").removeprefix("dasheng_")
        key = {"06B": "0.6B", "12B": "1.2B", "0.6b": "0.6B", "1.2b": "1.2B"}.get(key, key)
        if key not in sizes:
            raise ConfigError(f"unknown Dasheng size {name!r}; choose one of {sorted(sizes)}")
        return cls(**sizes[key])

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention`."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (Tensor): (B, L, D); key_mask (Tensor): (B, L) bool, True = attend."""
        b, n, d = x.shape
        q, k, v = (
            self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        mask = None if key_mask is None else key_mask[:, None, None, :]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-LN Transformer block (LayerNorm eps 1e-6, as Dasheng)."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, init_values: float | None
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), key_mask))
        return x + self.ls2(self.mlp(self.norm2(x)))


def pad_stack(features: list[torch.Tensor], length: int) -> torch.Tensor:
    """Right-pad (F, t_i) feature maps with zeros to (B, F, length)."""
    return torch.stack([F.pad(f, (0, length - f.shape[-1])) for f in features])


def token_mask(token_counts: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """(B, length) bool: which of tokens [start, start+length) exist for each clip."""
    positions = torch.arange(start, start + length, device=token_counts.device)
    return positions[None, :] < token_counts[:, None]


class SemanticEncoder(HubMixin, nn.Module):
    """Dasheng ViT: 16 kHz waves → (B, T, embed_dim) at 25 Hz, T = (1 + N // 160) // 4.

    Clips of different lengths are each featurised at their own length (reflect
    padding at their own end, dB floor from their own maximum) and padded tokens are
    masked as attention keys, so a clip's tokens never depend on its batch mates.
    """

    def __init__(self, config: SemanticEncoderConfig | None = None):
        super().__init__()
        self.config = config = config or SemanticEncoderConfig()
        d = config.embed_dim
        self.front_end = MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            f_min=config.f_min,
            f_max=config.f_max,
            power=2.0,
        )
        self.init_bn = nn.BatchNorm1d(config.n_mels, momentum=0.01)
        p = config.patch_frames
        self.patch_embed = nn.Conv2d(1, d, (config.n_mels, p), (config.n_mels, p))
        self.time_pos_embed = nn.Parameter(torch.randn(1, d, 1, config.target_length // p) * 0.02)
        self.freq_pos_embed = nn.Parameter(torch.randn(1, d, 1, 1) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d, config.num_heads, config.mlp_ratio, config.qkv_bias, config.init_values)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(d, eps=1e-6)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def token_count(self, num_samples: int) -> int:
        return num_frames(num_samples, self.config.hop_length) // self.config.patch_frames

    def set_compute_dtype(self, dtype: torch.dtype) -> SemanticEncoder:
        """Hold and run the ViT blocks in `dtype` (bf16/fp16 for a frozen encoder); the
        front end, BatchNorm and patch embedding stay fp32."""
        self.blocks.to(dtype)
        self.norm.to(dtype)
        return self

    @torch.no_grad()
    def max_power(self, wave: torch.Tensor, block_frames: int = 16128) -> torch.Tensor:
        """The clip's largest mel power, the reference of its dB floor (streamed)."""
        total = num_frames(wave.shape[-1], self.config.hop_length)
        peaks = [
            self.front_end.frames(wave, s, s + block_frames).amax()
            for s in range(0, total, block_frames)
        ]
        return torch.stack(peaks).amax()

    def mel_db(
        self, wave: torch.Tensor, start: int, stop: int, reference: torch.Tensor
    ) -> torch.Tensor:
        """dB mel frames [start, stop) of one clip: (n_mels, stop - start)."""
        return power_to_db(self.front_end.frames(wave, start, stop), reference, self.config.top_db)

    def embed_segment(
        self, waves: list[torch.Tensor], references: list[torch.Tensor], start: int, stop: int
    ) -> torch.Tensor:
        """Tokens of mel frames [start, stop) for each clip: (B, (stop - start) // 4, D).

        `start` must be a multiple of `target_length`; tokens a clip does not have
        (it is shorter) are zero.
        """
        cfg = self.config
        if start % cfg.target_length:
            raise ValueError(
                f"segment start {start} is not a multiple of {cfg.target_length} frames"
            )
        frames = [num_frames(w.shape[-1], cfg.hop_length) for w in waves]
        feats = [
            self.mel_db(w, start, min(stop, n), r) if start < n else w.new_zeros(cfg.n_mels, 0)
            for w, n, r in zip(waves, frames, references)
        ]
        length = stop - start
        x = self.init_bn(pad_stack(feats, length).to(self.init_bn.weight.dtype))
        counts = torch.tensor([n // cfg.patch_frames for n in frames], device=x.device)
        tokens = []
        for c0 in range(0, length, cfg.target_length):
            chunk = x[..., c0 : c0 + cfg.target_length]
            if chunk.shape[-1] < cfg.patch_frames:  # a partial patch yields no token
                break
            mask = token_mask(
                counts, (start + c0) // cfg.patch_frames, chunk.shape[-1] // cfg.patch_frames
            )
            tokens.append(self._transform(chunk, mask))
        out = torch.cat(tokens, dim=1)
        return out * token_mask(counts, start // cfg.patch_frames, out.shape[1])[..., None]

    def _transform(self, chunk: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """chunk (Tensor): (B, n_mels, t ≤ target_length) normalised features → (B, t // 4, D)."""
        x = self.patch_embed(chunk.unsqueeze(1))  # (B, D, 1, t // 4)
        x = x + self.time_pos_embed[..., : x.shape[-1]] + self.freq_pos_embed
        x = x.flatten(2).transpose(1, 2)
        # A clip with no tokens in this chunk attends freely (its outputs are zeroed later).
        key_mask = mask | ~mask.any(dim=1, keepdim=True)
        x = x.to(self.norm.weight.dtype)  # bf16/fp16 after AudioTokenizer.set_compute_dtype
        for block in self.blocks:
            x = block(x, key_mask if not mask.all() else None)
        return self.norm(x).float()

    # ---- checkpoints (sonotok.core.hub.HubMixin) ---------------------------------------
    # `from_pretrained(name_or_path, device=None, **hub)` loads a Zenodo `.pt`, a HF
    # `mispeech/dasheng-*` folder or id, or a folder written by `save_pretrained`, strictly.
    config_class = SemanticEncoderConfig
    model_type = "sonotok-semantic-encoder"

    def config_dict(self) -> dict:
        """{"model_type": ..., "config": {...}}: the layout saved folders have always had."""
        return {"model_type": self.model_type, "config": self.config.to_dict()}

    @classmethod
    def config_from_dict(cls, values: dict, where: str) -> SemanticEncoderConfig:
        """Our config.json, or a HF mispeech/dasheng-* one (name preset + encoder_kwargs)."""
        model_type = values.get("model_type")
        if model_type == cls.model_type:
            return dataclass_from_dict(SemanticEncoderConfig, values.get("config"), where)
        if model_type == "dasheng":
            size = SemanticEncoderConfig.preset(str(values.get("name", "dasheng-base")))
            sizes = dict(embed_dim=size.embed_dim, depth=size.depth, num_heads=size.num_heads)
            kwargs = values.get("encoder_kwargs", {})
            if not isinstance(kwargs, dict):
                raise ConfigError(f"{where}: encoder_kwargs must be a mapping")
            return _config_from_dasheng({**sizes, **kwargs}, where)
        raise CheckpointError(f"{where}: model_type {model_type!r} is not a Dasheng encoder")

    @classmethod
    def convert_state(cls, values: dict, state: dict[str, torch.Tensor]) -> dict:
        """HF dasheng repos: keys under "encoder." with the original names."""
        if values.get("model_type") != "dasheng":
            return state
        state = {k.removeprefix("encoder."): v for k, v in state.items()}
        return rename_keys(state, DASHENG_ENCODER_KEYS)

    @classmethod
    def load_path(cls, path: Path, source: str) -> SemanticEncoder:
        """A folder, or a Zenodo-style `.pt` dump {"model": state_dict, "config": dict}."""
        if not path.is_file():
            return super().load_path(path, source)
        dump = _read_dasheng_dump(path, source)
        config = _config_from_dasheng(dump.get("config", {}), source)
        return cls.from_state_dict(config, rename_keys(dump["model"], DASHENG_ENCODER_KEYS), source)

    def forward(
        self, waves: list[torch.Tensor] | torch.Tensor, chunks_per_pass: int = 16
    ) -> list[torch.Tensor]:
        """Encode clips of any length: list of (N_i,) or (B, N) → list of (T_i, D).

        At most `chunks_per_pass` 10.08 s chunks run through the ViT at once, so
        memory stays bounded however long the clips are.
        """
        waves = list(waves)
        references = [self.max_power(w) for w in waves]
        return stream_tokens(
            waves,
            self.config,
            chunks_per_pass,
            lambda a, b: self.embed_segment(waves, references, a, b),
        )


def stream_tokens(
    waves: list[torch.Tensor],
    config: SemanticEncoderConfig,
    chunks_per_pass: int,
    embed_segment: Callable[[int, int], torch.Tensor],
    progress: Callable[[float], None] | None = None,
) -> list[torch.Tensor]:
    """Assemble each clip's (T_i, D) tokens from `embed_segment(start, stop)` → (B, n, D)
    run over chunk-aligned frame ranges (`segments`), so memory stays bounded;
    `progress(fraction of frames done)` after each range."""
    counts = [num_frames(w.shape[-1], config.hop_length) // config.patch_frames for w in waves]
    total_frames = max(counts) * config.patch_frames
    out: list[torch.Tensor] | None = None
    for start, stop in segments(waves, config, chunks_per_pass):
        z = embed_segment(start, stop)
        if out is None:
            out = [z.new_zeros(c, z.shape[-1]) for c in counts]
        t0 = start // config.patch_frames
        for o, zi in zip(out, z):
            take = max(0, min(zi.shape[0], o.shape[0] - t0))
            o[t0 : t0 + take] = zi[:take]  # differentiable (CopySlices) when training
        if progress is not None:
            progress(stop / max(1, total_frames))
    return out


def segments(waves: list[torch.Tensor], config: SemanticEncoderConfig, chunks_per_pass: int):
    """Frame ranges [start, stop) covering the longest clip, each a whole number of
    semantic chunks, sized so that B × chunks stays within `chunks_per_pass`."""
    total = max(num_frames(w.shape[-1], config.hop_length) for w in waves)
    step = config.target_length * max(1, chunks_per_pass // len(waves))
    usable = total - total % config.patch_frames
    for start in range(0, usable, step):
        yield start, min(start + step, usable)


SEMANTIC_MODEL_TYPE = SemanticEncoder.model_type

# Keys of an original Dasheng config that map onto ours (others are training settings).
_DASHENG_CONFIG_KEYS = {
    "embed_dim": "embed_dim",
    "depth": "depth",
    "num_heads": "num_heads",
    "mlp_ratio": "mlp_ratio",
    "qkv_bias": "qkv_bias",
    "init_values": "init_values",
    "target_length": "target_length",
    "n_mels": "n_mels",
    "n_fft": "n_fft",
    "win_size": "win_length",
    "hop_size": "hop_length",
    "f_min": "f_min",
    "f_max": "f_max",
}


def _config_from_dasheng(values: dict, source: str) -> SemanticEncoderConfig:
    """Original Dasheng constructor kwargs (Zenodo `config`, HF `encoder_kwargs`) → our config."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source}: the encoder settings must be a mapping, got {type(values).__name__}"
        )
    for key in ("patch_size", "patch_stride"):
        patch = values.get(key)
        if key in values and (
            not isinstance(patch, (list, tuple)) or tuple(patch) != (values.get("n_mels", 64), 4)
        ):
            raise CheckpointError(
                f"{source}: unsupported {key}={values[key]}; sonotok supports (n_mels, 4) patches"
            )
    if values.get("pooling", "mean") == "token":
        raise CheckpointError(
            f"{source}: encoders with a [CLS] token (pooling='token') are not supported"
        )
    kwargs = {
        ours: values[theirs]
        for theirs, ours in _DASHENG_CONFIG_KEYS.items()
        if values.get(theirs) is not None
    }
    return dataclass_from_dict(SemanticEncoderConfig, kwargs, source)


def _read_dasheng_dump(path: Path, source: str) -> dict:
    """The dict of a Dasheng `.pt` dump, read with weights_only=True (nothing is executed)."""
    try:
        dump = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{source}: not a readable Dasheng .pt checkpoint ({type(err).__name__}: "
            f"{(str(err).splitlines() or [''])[0]}); nothing in it was executed"
        ) from None
    if not isinstance(dump, dict) or not isinstance(dump.get("model"), dict):
        raise CheckpointError(
            f"{source}: expected a dict with 'model' (and 'config'), got {type(dump).__name__}"
        )
    return dump
