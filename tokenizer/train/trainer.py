"""The tokenizer GAN trainer: one accelerate loop for 1 CPU, 1 GPU or N GPUs.

Trains the acoustic projection, upsampler and Vocos decoder of an AudioTokenizer against
its frozen semantic encoder with the paper's recipe; the discriminators are updated
first on each batch (hinge), then the generator on
L_G = λ_sem‖z_sem − z_ac‖² + λ_mel·L1(log-mel) + λ_fm·L_fm + λ_adv·L_adv.

The loop, checkpoints, resume, signals and logging are the core's `Trainer`
(sonotok.core.training); `CropTrainer` (audio crops by global sample position, skip counts)
and the GAN step, validation and media logging shared with the codec recipe are `GANTrainer`'s
(`gan`); this module adds the tokenizer's generator, loss and export.
Layout of `train.output_dir`: config.yaml, checkpoints/step_*/, metrics.jsonl, tensorboard/,
and model/ — the `save_pretrained` folder that `AudioTokenizer.from_pretrained` and the CLI
load (rewritten at every checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from sonotok.core.hub import write_pretrained
from sonotok.core.training import TrainResult

from ..config import TokenizerConfig
from ..mel import num_frames
from ..model import AudioTokenizer
from ..semantic import SemanticEncoder
from .gan import CropTrainer, GANTrainer, _add
from .losses import MelLoss, semantic_alignment
from .recipe import TokenizerTrainConfig

logger = logging.getLogger(__name__)

__all__ = [
    "CropTrainer",
    "TokenizerTrainer",
    "TrainableTokenizer",
    "build_tokenizer",
    "train_tokenizer",
]


class TrainableTokenizer(nn.Module):
    """The trained parts of an AudioTokenizer (shared, not copied): acoustic projection,
    upsampler, decoder. audio (B, N), z_sem (B, T, D) → reconstruction (B, T·640), z_ac (B, T, D).
    Attribute names match AudioTokenizer's, so state-dict keys are the tokenizer's own."""

    def __init__(self, tokenizer: AudioTokenizer):
        super().__init__()
        self.acoustic = tokenizer.acoustic
        self.upsampler = tokenizer.upsampler
        self.decoder = tokenizer.decoder

    def forward(
        self, audio: torch.Tensor, z_sem: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.acoustic.config
        frames = num_frames(audio.shape[-1], cfg.hop_length)
        z_ac = self.acoustic.embed_segment(list(audio), 0, frames - frames % cfg.patch_frames)
        z = z_sem + z_ac
        return self.decoder(self.upsampler(z.transpose(1, 2))), z_ac


def build_tokenizer(settings) -> AudioTokenizer:
    """The starting tokenizer from `ModelSettings` (call after seeding)."""
    if settings.pretrained:
        return AudioTokenizer.from_pretrained(settings.pretrained)
    base = TokenizerConfig() if settings.architecture == "paper" else TokenizerConfig.tiny()
    if settings.decoder:
        base.decoder = replace(base.decoder, **settings.decoder)
        base.validate()
    if settings.semantic_encoder:
        return AudioTokenizer.from_semantic_encoder(
            SemanticEncoder.from_pretrained(settings.semantic_encoder), base
        )
    logger.warning(
        "model.semantic_encoder is not set: training on a RANDOM semantic encoder (smoke tests only)"
    )
    return AudioTokenizer(base)


class TokenizerTrainer(GANTrainer):
    """Build everything from a `TokenizerTrainConfig`, then `run()` (see `Trainer`); the
    discriminator/generator step is `GANTrainer`'s, the generator loss
    λ_sem·L_sem + λ_mel·L_mel is this recipe's."""

    name = "train tokenizer"

    def __init__(self, config: TokenizerTrainConfig, log_with: str | None = "config"):
        super().__init__(config, log_with)
        cfg, acc = config, self.accelerator
        self.tokenizer = build_tokenizer(cfg.model).to(acc.device)
        self.sample_rate = self.tokenizer.sample_rate
        self.tokenizer.semantic.eval().requires_grad_(False)
        if not cfg.model.train_acoustic:  # the encoder side stays fixed: latents do not change
            self.tokenizer.acoustic.requires_grad_(False)
        if cfg.model.semantic_dtype == "bf16":
            self.tokenizer.semantic.set_compute_dtype(torch.bfloat16)
        self.setup_gan(TrainableTokenizer(self.tokenizer).train())
        self.mel_loss = MelLoss(
            self.tokenizer.sample_rate, cfg.loss.mel_n_fft, cfg.loss.mel_hop, cfg.loss.mel_bins
        ).to(acc.device)

    @torch.no_grad()
    def semantic_latents(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.tokenizer.semantic(list(audio)))

    def generator_inputs(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, z_sem): the frozen encoder runs once per micro-batch."""
        return audio, self.semantic_latents(audio)

    def generator_loss(self, inputs: tuple, out: tuple, logs: dict, n: int):
        """λ_sem·‖z_sem − z_ac‖² + λ_mel·L_mel."""
        (audio, z_sem), (fake_audio, z_ac), lam = inputs, out, self.config.loss
        l_mel = self.mel_loss(audio, fake_audio)
        l_sem = semantic_alignment(z_sem, z_ac)
        _add(logs, "loss/mel", l_mel, n)
        _add(logs, "loss/semantic", l_sem, n)
        return audio, fake_audio, lam.semantic * l_sem + lam.mel * l_mel

    # ---- export -----------------------------------------------------------------------
    def export(self) -> Path:
        """Write the tokenizer (semantic encoder + trained parts, EMA weights if enabled) as a
        save_pretrained folder `output_dir/model`."""
        state = self.tokenizer.state_dict()
        state.update({k: v for k, v in self.shipped_model().state_dict().items() if k in state})
        write_pretrained(self.export_dir, self.tokenizer.config.to_dict(), state)
        return self.export_dir


def train_tokenizer(
    config: TokenizerTrainConfig,
    resume=None,
    stop_after_steps: int | None = None,
    log_with: str | None = "config",
) -> TrainResult:
    """Build a `TokenizerTrainer` and run it (see `Trainer.run`). `log_with`: "config"
    follows train.log_with; "tensorboard" or None override it."""
    return TokenizerTrainer(config, log_with).run(resume, stop_after_steps)
