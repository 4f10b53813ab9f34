"""Training SemantiCodec's latent diffusion decoder (the release ships inference only).

Recipe, as the paper's AudioLDM-style decoder: 10.24 s segments → the codec's quantized
features (the condition) and the VAE latents of their 64-bin log-mel (the target); the UNet
learns the release's v-prediction (`parameterization: v`) at a uniformly drawn timestep, the
feature zeroed with probability `model.cfg_dropout` (position embedding kept) so that
classifier-free guidance works at decoding. The VAE and HiFi-GAN are frozen, and so is the
AudioMAE + k-means semantic branch. With `model.train_acoustic`, the acoustic encoder
(LSTM + projection) and its codebook train jointly through a straight-through quantiser with
codebook and commitment losses (the release used a VQ with the same role).

Data are the shared crop layer's (`CropTrainer`, as `sonotok train tokenizer` / `codec`):
`data.sources` cut in 10.24 s crops at 16 kHz, each fixed by its global sample position.
Everything random in a step (timesteps, noise, the VAE posterior sample, CFG dropout) is drawn
from generators seeded by (seed, data position), so resuming is exact.

    from sonotok.tokenizer.semanticodec.train_decoder import train
    train("configs/semanticodec/tiny.yaml", ["data.sources=[{path: my_wavs/}]"])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from sonotok.core import training
from sonotok.core.config import load_yaml_config
from sonotok.core.errors import ConfigError

from ..train.recipe import CropDataSettings
from ..train.trainer import CropTrainer
from .configs import SEGMENT_SAMPLES, SemantiCodecConfig
from .decoder import SemantiCodecDecoder
from .decoder_config import DecoderConfig
from .encoder import padding_cutoff, segment_fbank
from .family import SemantiCodec

__all__ = [
    "DecoderTrainConfig",
    "DecoderTrainer",
    "LogMel",
    "load_config",
    "slaney_filterbank",
    "tiny_codec",
    "train",
]


@dataclass
class TrainSection(training.TrainSettings):
    output_dir: str = "runs/semanticodec_decoder"
    batch_size: int = 8
    checkpoint_every: int = 1000


@dataclass
class OptimSection(training.OptimSettings):
    lr: float = 1e-4  # base_learning_rate of the official LatentDiffusion config
    warmup_steps: int = 1000
    ema_decay: float | None = 0.9999  # LitEma's decay in the release


@dataclass
class ModelSection:
    """`codec`: "tiny" (a random tiny codec, for tests), or a SemantiCodec folder / name
    (`load_tokenizer`); its decoder is trained further when it has one, otherwise a new
    decoder of `decoder_size` is built (random UNet, VAE and vocoder: bring a trained VAE and
    vocoder for real use)."""

    codec: str = "tiny"
    token_rate: int = 100  # for codec: tiny
    decoder_size: Literal["tiny", "official"] = "tiny"
    cfg_dropout: float = 0.1
    train_acoustic: bool = False
    commitment: float = 0.25
    scale_by_std: bool = True  # a new decoder sets its latent scale from the first batch

    def __post_init__(self) -> None:
        if not 0 <= self.cfg_dropout < 1:
            raise ConfigError(f"model.cfg_dropout={self.cfg_dropout}: use 0 ≤ p < 1")


@dataclass
class DataSection(CropDataSettings):
    """The shared crop data settings (`data.sources: [{path: ..., weight: ...}]`), at the
    decoder's fixed geometry: 10.24 s crops at 16 kHz (shorter items zero-padded). The recipe
    runs no validation: `val_sources` are only looked at by `--check`."""

    segment_samples: int = SEGMENT_SAMPLES

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.segment_samples != SEGMENT_SAMPLES:
            raise ConfigError(
                f"data.segment_samples={self.segment_samples}: the SemantiCodec decoder trains "
                f"on 10.24 s segments; use {SEGMENT_SAMPLES} (or leave it out)"
            )


@dataclass
class DecoderTrainConfig:
    RENAMED: ClassVar[dict[str, str]] = training.OLD_KEYS

    train: TrainSection = field(default_factory=TrainSection)
    optim: OptimSection = field(default_factory=OptimSection)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)

    def __post_init__(self) -> None:
        if not self.data.sources:
            raise ConfigError(
                "data.sources is empty; add at least one, e.g. --set 'data.sources=[{path: my_wavs/}]'"
            )


def load_config(path: str | Path | None, overrides: list[str] = ()) -> DecoderTrainConfig:
    """A YAML file (or nothing: defaults) plus `key.path=value` overrides, checked up front."""
    return load_yaml_config(DecoderTrainConfig, path, list(overrides))


# ---- the VAE's mel front end --------------------------------------------------------------
def _slaney_mel(freq: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mels = freq / f_sp
    log = freq >= min_log_hz
    mels[log] = min_log_mel + np.log(freq[log] / min_log_hz) / logstep
    return mels


def _slaney_hz(mels: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    freq = f_sp * mels
    log = mels >= min_log_mel
    freq[log] = min_log_hz * np.exp(logstep * (mels[log] - min_log_mel))
    return freq


def slaney_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) Slaney-normalised filters (librosa.filters.mel's defaults)."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    edges = _slaney_mel(np.array([fmin, fmax], dtype=np.float64))
    mel_f = _slaney_hz(np.linspace(edges[0], edges[1], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


class LogMel(nn.Module):
    """AudioLDM's VAE input: log(max(mel(|STFT|), 1e-5)), n_fft = win = 1024, hop 160,
    reflect-padded by (n_fft - hop) / 2 each side: (B, N) → (B, 1, N / hop, mel_bins)."""

    def __init__(self, mel_bins: int = 64, sample_rate: int = 16000, hop: int = 160):
        super().__init__()
        self.n_fft, self.hop = 1024, hop
        bank = slaney_filterbank(sample_rate, self.n_fft, mel_bins, 0.0, sample_rate / 2)
        self.register_buffer("bank", torch.tensor(bank, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop) // 2
        wave = nn.functional.pad(wave[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=False,
                          return_complex=True).abs()  # fmt: skip
        mel = torch.log(torch.clamp(self.bank @ spec, min=1e-5))
        return mel.transpose(1, 2)[:, None]


# ---- model --------------------------------------------------------------------------------
def tiny_codec(token_rate: int, seed: int) -> SemantiCodec:
    """A random tiny SemantiCodec with a tiny decoder (tests, `model.codec: tiny`)."""
    config = SemantiCodecConfig(
        token_rate=token_rate, semantic_vocab_size=32, num_centroids=24, acoustic_codebook_size=32,
        embed_dim=8, depth=3, num_heads=2, contextual_depth=0, lstm_layers=1,
    )  # fmt: skip
    config.decoder = DecoderConfig.tiny(feature_dim=2 * config.feature_dim)
    codec = SemantiCodec(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in codec.encoder.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(
                1.0 + 0.2 * noise if "norm" in name and name.endswith("weight") else 0.3 * noise
            )
        codec.encoder.centroids.copy_(torch.randn(codec.encoder.centroids.shape, generator=gen))
        codec.encoder.audiomae.reset_positions()
    return codec


def build_codec(settings: ModelSection, seed: int) -> tuple[SemantiCodec, bool]:
    """The codec to train and whether its decoder is new (random)."""
    if settings.codec == "tiny":
        return tiny_codec(settings.token_rate, seed), True
    from sonotok.tokenizer.interface import load_tokenizer

    codec = load_tokenizer(settings.codec)
    if not isinstance(codec, SemantiCodec):
        raise ConfigError(f"model.codec={settings.codec!r} is not a SemantiCodec model")
    if codec.decoder is not None:
        return codec, False
    width = 2 * codec.config.feature_dim
    size = settings.decoder_size
    cfg = (
        DecoderConfig.tiny(feature_dim=width)
        if size == "tiny"
        else DecoderConfig(feature_dim=width)
    )
    codec.config.decoder = cfg
    codec.decoder = SemantiCodecDecoder(cfg)
    return codec, True


class DecoderTrainingModel(nn.Module):
    """The codec plus the loss: what the trainer prepares, checkpoints and optimises."""

    def __init__(self, codec: SemantiCodec, settings: ModelSection):
        super().__init__()
        self.codec, self.settings = codec, settings
        decoder = codec.decoder
        self.mel = LogMel(decoder.config.mel_bins, decoder.config.sample_rate,
                          decoder.config.hop_length)  # fmt: skip
        ac = torch.tensor(decoder.alphas_cumprod, dtype=torch.float64)
        self.register_buffer("sqrt_ac", ac.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_1mac", (1 - ac).sqrt().float(), persistent=False)
        codec.requires_grad_(False)
        decoder.unet.requires_grad_(True)
        if settings.train_acoustic:
            enc = codec.encoder
            for module in (enc.lstm, enc.residual_proj):
                module.requires_grad_(True)
            enc.acoustic_codebook.requires_grad_(True)

    def train(self, mode: bool = True) -> DecoderTrainingModel:
        super().train(mode)
        self.codec.eval()  # frozen parts keep eval behaviour; the UNet has no dropout
        return self

    def condition(self, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 163840) segments → quantized features (B, T, C) and the acoustic VQ loss."""
        enc = self.codec.encoder
        padded = waves - waves.mean(dim=1, keepdim=True)
        padded = nn.functional.pad(padded, (0, SEGMENT_SAMPLES))  # next segment: silence
        fbank = torch.stack([segment_fbank(w, 0) for w in padded])
        with torch.no_grad():
            features = enc.semantic_features(fbank)
            semantic = enc.quantize_semantic(features)
        cutoff = padding_cutoff(fbank, features.shape[1])
        centroids = enc.centroids[semantic]
        if not self.settings.train_acoustic:
            with torch.no_grad():
                acoustic = enc.quantize_acoustic(enc.residual(features, semantic, cutoff))
                return torch.cat([enc.acoustic_codebook[acoustic], centroids], -1), waves.new_zeros(
                    ()
                )
        residual = enc.residual(features, semantic, cutoff)
        codes = enc.acoustic_codebook[enc.quantize_acoustic(residual.detach())]
        vq = (codes - residual.detach()).pow(2).mean()
        vq = vq + self.settings.commitment * (residual - codes.detach()).pow(2).mean()
        quantized = residual + (codes - residual).detach()  # straight-through
        return torch.cat([quantized, centroids], -1), vq

    def latents(self, waves: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The frozen VAE's posterior sample of the segments' log-mel, times scale_factor."""
        decoder = self.codec.decoder
        with torch.no_grad():
            dist = decoder.vae.encode(self.mel(waves)).latent_dist
            eps = torch.randn(dist.mean.shape, generator=gen).to(dist.mean)
            return (dist.mean + dist.std * eps) * decoder.scale_factor

    def forward(self, waves: torch.Tensor, seed: int) -> tuple[torch.Tensor, dict]:
        """v-prediction loss on a batch of segments; randomness from `seed`."""
        gen = torch.Generator().manual_seed(seed)
        decoder = self.codec.decoder
        features, vq = self.condition(waves)
        z = self.latents(waves, gen)
        b = z.shape[0]
        t = torch.randint(0, len(decoder.alphas_cumprod), (b,), generator=gen).to(z.device)
        noise = torch.randn(z.shape, generator=gen).to(z)
        keep = (torch.rand(b, generator=gen) >= self.settings.cfg_dropout).to(z)
        a, s = self.sqrt_ac[t][:, None, None, None], self.sqrt_1mac[t][:, None, None, None]
        x_t = a * z + s * noise
        context = decoder.context(features * keep[:, None, None])
        v = decoder.velocity(x_t, t, context)
        diffusion = (v - (a * noise - s * z)).pow(2).mean()
        return diffusion + vq, {"loss_diffusion": diffusion.detach(), "loss_vq": vq.detach()}


class DecoderTrainer(CropTrainer):
    """`train_step` = one optimiser step of the UNet (and the acoustic branch, if enabled) on
    the shared crops (`CropTrainer.batches`)."""

    name = "semanticodec decoder"
    export_name = "model"
    progress_keys = ("loss", "loss_diffusion")

    def __init__(self, config: DecoderTrainConfig, log_with: str | None = "config"):
        super().__init__(config, log_with)
        codec, fresh = build_codec(config.model, config.train.seed)
        self.model_core = DecoderTrainingModel(codec, config.model)
        self.fresh = fresh and config.model.scale_by_std
        params = [p for p in self.model_core.parameters() if p.requires_grad]
        self.setup_model(self.model_core, params)

    def positions(self, count: int) -> list[int]:
        """The global data position of the first crop of each of this step's micro-batches
        on this process (as `sampling` lays them out): the seed of their randomness."""
        acc, batch = self.accelerator, self.config.train.batch_size
        return [
            self.step * batch + (j * acc.num_processes + acc.process_index) * self.per_device
            for j in range(count)
        ]

    def train_step(self, micro_batches: list[dict]) -> dict[str, float]:
        waves = [self.audio(batch) for batch in micro_batches]
        if self.step == 0 and self.fresh:
            self._scale_by_std(waves[0])
        seed = self.config.train.seed
        items = list(zip(waves, self.positions(len(waves)), strict=True))

        def loss_fn(item):
            audio, position = item
            return self.model(audio, seed * 1_000_003 + position)

        return {**self.optimize(items, loss_fn), **self.count_skipped()}

    def _scale_by_std(self, waves: torch.Tensor) -> None:
        """scale_factor = 1 / std of the first batch's latents (LDM's scale_by_std)."""
        core = self.accelerator.unwrap_model(self.model)
        decoder = core.codec.decoder
        decoder.scale_factor.fill_(1.0)
        z = core.latents(waves.to(self.accelerator.device), torch.Generator().manual_seed(0))
        decoder.scale_factor.fill_(1.0 / float(z.flatten().std()))

    def export(self) -> Path:
        codec = self.shipped_model().codec
        codec.save_pretrained(self.export_dir)
        return self.export_dir


def train(
    config: str | Path | DecoderTrainConfig | None = None,
    overrides: list[str] = (),
    resume=None,
    stop_after_steps: int | None = None,
    log_with: str | None = "config",
) -> training.TrainResult:
    """Run the recipe from a YAML path (or a config object); see the module docs."""
    cfg = config if isinstance(config, DecoderTrainConfig) else load_config(config, overrides)
    return DecoderTrainer(cfg, log_with).run(resume=resume, stop_after_steps=stop_after_steps)
