"""The tokenizer GAN trainer: one accelerate loop for 1 CPU, 1 GPU or N GPUs.

Trains the acoustic projection, upsampler and Vocos decoder of an AudioTokenizer against
its frozen semantic encoder with the paper's recipe; the discriminators are updated
first on each batch (hinge), then the generator on
L_G = λ_sem‖z_sem − z_ac‖² + λ_mel·L1(log-mel) + λ_fm·L_fm + λ_adv·L_adv.

The loop, checkpoints, resume, signals and logging are the core's `Trainer`
(sonotok.core.training); `CropTrainer` adds what the tokenizer and MAE recipes share: audio
crops drawn by global sample position (`data`, `sampling`) and counts of skipped items.
Layout of `train.output_dir`: config.yaml, checkpoints/step_*/, metrics.jsonl, tensorboard/,
and model/ — the `save_pretrained` folder that `AudioTokenizer.from_pretrained` and the CLI
load (rewritten at every checkpoint).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from sonotok.core.hub import write_pretrained
from sonotok.core.training import Trainer, TrainResult, grouped

from ..config import TokenizerConfig
from ..mel import num_frames
from ..model import AudioTokenizer
from ..semantic import SemanticEncoder
from .data import AudioCropDataset, collate_crops, crop_loader, open_source
from .discriminators import build_discriminators
from .losses import (
    MelLoss,
    discriminator_hinge,
    feature_matching,
    generator_hinge,
    mean_score,
    semantic_alignment,
)
from .recipe import TokenizerTrainConfig
from .validation import mel_distance, speech_scores, stft_distance

logger = logging.getLogger(__name__)

MAX_PROBLEM_MESSAGES = 20  # per process; the counts keep going in the logs


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


def _add(logs: dict, key: str, value: torch.Tensor, n: int) -> None:
    """Accumulate the micro-batch mean of a logged value."""
    logs[key] = logs.get(key, 0) + value.detach().float() / n


def _split(outputs: dict, n: int) -> tuple[dict, dict]:
    """Discriminator outputs on cat([real, fake]) → (real outputs, fake outputs)."""
    real, fake = {}, {}
    for name, subs in outputs.items():
        real[name] = [(s[:n], [f[:n] for f in fs]) for s, fs in subs]
        fake[name] = [(s[n:], [f[n:] for f in fs]) for s, fs in subs]
    return real, fake


class CropTrainer(Trainer):
    """A `Trainer` on fixed-length audio crops (the tokenizer GAN and MAE recipes).

    `data.sources` are opened first, so a wrong path fails before any model is built. The
    crop at each global sample position is fixed by the seed (`sampling`), so the data
    position is the step × the global batch and a resumed run reads what an uninterrupted
    one would. Unreadable and silent items are skipped, counted (summed over processes, kept
    in checkpoints) and logged as data/unreadable_skipped and data/silent_skipped."""

    def __init__(self, config, log_with: str | None = "config"):
        self.sources = [open_source(s) for s in config.data.sources]
        super().__init__(config, log_with)
        self.skipped = {"unreadable": 0, "silent": 0}
        self._pending = [0, 0]  # this process's skips in the current step
        self.messages = 0

    def batches(self):
        """The `grad_accum` crop batches of each step, from data position `self.step`."""
        cfg = self.config
        loader = crop_loader(
            self.sources,
            cfg.data,
            cfg.train.seed,
            self.per_device,
            self.accelerator,
            self.step * cfg.train.batch_size,
        )
        return grouped(loader, cfg.train.grad_accum)

    def audio(self, batch: dict) -> torch.Tensor:
        """A crop batch's audio on the device; its skipped items counted, the first
        MAX_PROBLEM_MESSAGES problems of this process printed."""
        self._pending[0] += batch["unreadable"]
        self._pending[1] += batch["silent"]
        for message in batch["problems"]:
            if self.messages < MAX_PROBLEM_MESSAGES:
                tqdm.write(f"[process {self.accelerator.process_index}] {message}")
            self.messages += 1
        return batch["audio"].to(self.accelerator.device, non_blocking=True)

    def count_skipped(self) -> dict[str, int]:
        """Add this step's skips of every process to the totals (collective); the totals."""
        counts = torch.tensor(self._pending, dtype=torch.float32, device=self.accelerator.device)
        counts = self.accelerator.reduce(counts, reduction="sum")
        self.skipped["unreadable"] += int(counts[0])
        self.skipped["silent"] += int(counts[1])
        self._pending = [0, 0]
        return {
            "data/unreadable_skipped": self.skipped["unreadable"],
            "data/silent_skipped": self.skipped["silent"],
        }

    def trainer_state(self) -> dict:
        return {**super().trainer_state(), "skipped": dict(self.skipped)}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.skipped = dict(state.get("skipped", self.skipped))

    def on_end(self) -> None:
        if self.skipped["unreadable"] or self.skipped["silent"]:
            logger.warning(
                "skipped %d unreadable and %d silent data items",
                self.skipped["unreadable"],
                self.skipped["silent"],
            )


class TokenizerTrainer(CropTrainer):
    """Build everything from a `TokenizerTrainConfig`, then `run()` (see `Trainer`).

    Gradient accumulation is explicit: all discriminator micro-batches, then all generator
    micro-batches, so it equals one large batch."""

    name = "train tokenizer"
    progress_keys = ("loss/mel", "loss/generator")

    def __init__(self, config: TokenizerTrainConfig, log_with: str | None = "config"):
        self.val_sources = [open_source(s) for s in config.data.val_sources]
        super().__init__(config, log_with)
        cfg, acc = config, self.accelerator
        self.tokenizer = build_tokenizer(cfg.model).to(acc.device)
        self.tokenizer.semantic.eval().requires_grad_(False)
        if not cfg.model.train_acoustic:  # the encoder side stays fixed: latents do not change
            self.tokenizer.acoustic.requires_grad_(False)
        if cfg.model.semantic_dtype == "bf16":
            self.tokenizer.semantic.set_compute_dtype(torch.bfloat16)
        self.generator = TrainableTokenizer(self.tokenizer).train()
        self.discriminators, self.disc_weights = build_discriminators(cfg.discriminators)
        self.mel_loss = MelLoss(
            self.tokenizer.sample_rate, cfg.loss.mel_n_fft, cfg.loss.mel_hop, cfg.loss.mel_bins
        ).to(acc.device)

        self.clip = cfg.optim.grad_clip or math.inf
        opt_g = self.make_optimizer(self.generator.parameters())
        opt_d = self.make_optimizer(self.discriminators.parameters())
        self.sched_g, self.sched_d = self.make_scheduler(opt_g), self.make_scheduler(opt_d)
        self.make_ema(self.generator)
        self.gen, self.disc, self.opt_g, self.opt_d = acc.prepare(
            self.generator, self.discriminators, opt_g, opt_d
        )
        self._validation_audio: torch.Tensor | None = None

    def checkpoint_objects(self) -> dict:
        return {
            "generator": self.gen,
            "discriminators": self.disc,
            "optimizer_g": self.opt_g,
            "optimizer_d": self.opt_d,
            "scheduler_g": self.sched_g,
            "scheduler_d": self.sched_d,
        }

    # ---- data -----------------------------------------------------------------------
    def validation_audio(self) -> torch.Tensor:
        """`validation_batch()`, made once."""
        if self._validation_audio is None:
            self._validation_audio = self.validation_batch()
        return self._validation_audio

    def validation_batch(self) -> torch.Tensor:
        """The fixed held-out crops (val_sources; training sources with another seed if none)."""
        cfg = self.config
        sources, settings = (
            (self.val_sources, cfg.data.val_sources)
            if self.val_sources
            else (self.sources, cfg.data.sources)
        )
        if not self.val_sources:
            logger.warning("data.val_sources is empty: validating on training audio (other crops)")
        dataset = AudioCropDataset(
            sources,
            [s.weight for s in settings],
            cfg.data.val_segment_samples,
            cfg.train.seed + 1,
            cfg.data.silence_db,
        )
        return collate_crops([dataset[i] for i in range(cfg.data.val_items)])["audio"]

    # ---- one optimisation step --------------------------------------------------------
    @torch.no_grad()
    def semantic_latents(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.tokenizer.semantic(list(audio)))

    def _sync(self, model, last: bool):
        """Gradient all-reduce only on the last micro-batch of a step."""
        return contextlib.nullcontext() if last else self.accelerator.no_sync(model)

    def _discriminator_phase(self, micro, cached: dict, logs: dict) -> None:
        """Update the discriminators on every micro-batch's real and (detached) fake audio."""
        acc, n = self.accelerator, len(micro)
        for i, (audio, z_sem) in enumerate(micro):
            with self._sync(self.disc, i == n - 1):
                if n == 1:  # the generator graph is kept for its own update
                    cached[i] = self.gen(audio, z_sem)
                    fake_audio = cached[i][0].detach()
                else:  # with accumulation, G's pass is redone after D has stepped
                    with torch.no_grad():
                        fake_audio = self.gen(audio, z_sem)[0]
                real, fake = _split(self.disc(torch.cat([audio, fake_audio])), audio.shape[0])
                loss_d = sum(
                    w * discriminator_hinge(real[k], fake[k]) for k, w in self.disc_weights.items()
                )
                acc.backward(loss_d / n)
            _add(logs, "loss/discriminators", loss_d, n)
            for k in self.disc_weights:
                _add(logs, f"score/{k}_real", mean_score(real[k]), n)
                _add(logs, f"score/{k}_fake", mean_score(fake[k]), n)
        logs["grad_norm/discriminators"] = acc.clip_grad_norm_(self.disc.parameters(), self.clip)
        self.opt_d.step()
        self.opt_d.zero_grad(set_to_none=True)

    def _generator_phase(self, micro, cached: dict, adversarial: bool, logs: dict) -> None:
        """Update the generator: λ_sem·L_sem + λ_mel·L_mel (+ λ_fm·L_fm + λ_adv·L_adv)."""
        acc, lam, n = self.accelerator, self.config.loss, len(micro)
        disc = acc.unwrap_model(self.disc)  # judged without DDP sync: D is not updated here
        for i, (audio, z_sem) in enumerate(micro):
            with self._sync(self.gen, i == n - 1):
                fake_audio, z_ac = cached.pop(i) if i in cached else self.gen(audio, z_sem)
                l_mel = self.mel_loss(audio, fake_audio)
                l_sem = semantic_alignment(z_sem, z_ac)
                loss_g = lam.semantic * l_sem + lam.mel * l_mel
                if adversarial:
                    disc.requires_grad_(False)
                    with torch.no_grad():
                        real = disc(audio)
                    fake = disc(fake_audio)
                    disc.requires_grad_(True)
                    l_adv = sum(w * generator_hinge(fake[k]) for k, w in self.disc_weights.items())
                    l_fm = sum(
                        w * feature_matching(real[k], fake[k]) for k, w in self.disc_weights.items()
                    )
                    loss_g = loss_g + lam.adversarial * l_adv + lam.feature_matching * l_fm
                    _add(logs, "loss/adversarial", l_adv, n)
                    _add(logs, "loss/feature_matching", l_fm, n)
                acc.backward(loss_g / n)
            _add(logs, "loss/mel", l_mel, n)
            _add(logs, "loss/semantic", l_sem, n)
            _add(logs, "loss/generator", loss_g, n)
        logs["grad_norm/generator"] = acc.clip_grad_norm_(self.gen.parameters(), self.clip)
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)

    def train_step(self, micro_batches: list[dict]) -> dict[str, float]:
        """One optimizer step of each model over the step's `grad_accum` micro-batches: all
        of the discriminators' micro-batches first, then the generator's (so accumulation
        equals one big batch). Returns values averaged over micro-batches and processes."""
        adversarial = self.step >= self.config.optim.mel_only_steps
        micro = []
        for batch in micro_batches:
            audio = self.audio(batch)
            micro.append((audio, self.semantic_latents(audio)))
        logs: dict[str, torch.Tensor] = {}
        cached: dict = {}
        if adversarial:
            self._discriminator_phase(micro, cached, logs)
        self._generator_phase(micro, cached, adversarial, logs)
        out = self.mean_over_processes(logs)
        # the rates this step used
        out["lr/generator"] = self.opt_g.param_groups[0]["lr"]
        out["lr/discriminators"] = self.opt_d.param_groups[0]["lr"]
        self.sched_g.step()
        if adversarial:  # D's warm-up starts with its first update (after mel-only steps)
            self.sched_d.step()
        return {**out, **self.count_skipped()}

    def after_step(self) -> dict[str, float]:
        """Validation every train.val_every steps, audio and mel images every audio_every."""
        t = self.config.train
        media = bool(t.audio_every) and self.step % t.audio_every == 0
        if not (media or (t.val_every and self.step % t.val_every == 0)):
            return {}
        metrics: dict[str, float] = {}
        if self.accelerator.is_main_process:
            metrics, recon = self.validate(self.validation_audio())
            if media:
                self.log_media(self.validation_audio(), recon)
        self.accelerator.wait_for_everyone()
        return metrics

    # ---- monitoring -----------------------------------------------------------------
    def shipped_model(self) -> nn.Module:
        """The generator whose weights are exported and validated (EMA if enabled)."""
        return self.ema.module if self.ema is not None else self.accelerator.unwrap_model(self.gen)

    @torch.no_grad()
    def validate(self, audio: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """Reconstruct the validation crops; mel/STFT distances (and PESQ/STOI if data.val_speech)."""
        gen = self.shipped_model()
        was_training = gen.training
        gen.eval()
        audio = audio.to(self.accelerator.device)
        recon, _ = gen(audio, self.semantic_latents(audio))
        gen.train(was_training)
        metrics = {
            "val/mel_distance": mel_distance(audio, recon),
            "val/stft_distance": stft_distance(audio, recon),
        }
        if self.config.data.val_speech:
            metrics.update({f"val/{k}": v for k, v in speech_scores(audio, recon).items()})
        return metrics, recon

    def log_media(self, audio: torch.Tensor, recon: torch.Tensor) -> None:
        """Audio examples and a reference-over-reconstruction log-mel image to TensorBoard."""
        writer = self.tensorboard()
        if writer is None:
            return
        sr = self.tokenizer.sample_rate
        for i in range(min(2, audio.shape[0])):
            writer.add_audio(
                f"audio/{i}_reference", audio[i].clamp(-1, 1).cpu()[None], self.step, sample_rate=sr
            )
            writer.add_audio(
                f"audio/{i}_reconstruction",
                recon[i].clamp(-1, 1).cpu()[None],
                self.step,
                sample_rate=sr,
            )
            mels = self.mel_loss.log_mel(
                torch.stack([audio[i].to(recon.device), recon[i]]).to(self.accelerator.device)
            ).cpu()
            image = torch.cat(
                [mels[0].flip(0), mels[1].flip(0)], dim=0
            )  # low frequencies at the bottom
            image = (image - image.min()) / (image.max() - image.min() + 1e-8)
            writer.add_image(
                f"mel/{i}_reference_over_reconstruction", image, self.step, dataformats="HW"
            )

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
