"""The tokenizer GAN trainer: one accelerate loop for 1 CPU, 1 GPU or N GPUs.

Trains the acoustic projection, upsampler and Vocos decoder of an AudioTokenizer against
its frozen semantic encoder with the paper's recipe; the discriminators are updated
first on each batch (hinge), then the generator on
L_G = λ_sem‖z_sem − z_ac‖² + λ_mel·L1(log-mel) + λ_fm·L_fm + λ_adv·L_adv.

Layout of `train.output_dir`: config.yaml (resolved settings), checkpoints/step_*/,
metrics.jsonl (every logged value), tensorboard/, and model/ — the final
`save_pretrained` folder that `AudioTokenizer.from_pretrained` and the CLI load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from sonotok.core.checkpointing import CheckpointManager

from ..checkpoints import write_pretrained
from ..config import ConfigError, TokenizerConfig
from ..mel import num_frames
from ..model import AudioTokenizer
from ..semantic import SemanticEncoder
from .config import dump_yaml, per_device_batch, to_dict
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


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1 over `warmup` steps, then cosine to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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


def _flat(values: dict, prefix: str = "") -> dict:
    """Nested config → {"a.b": scalar} for TensorBoard's hparams (lists become strings)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


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


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    model_dir: Path | None  # the exported save_pretrained folder (None if stopped early)
    last_metrics: dict


class TokenizerTrainer:
    """Build everything from a `TokenizerTrainConfig`, then `run()`.

    Every process calls the same methods; accelerate handles devices, DDP and mixed
    precision; gradient accumulation is explicit (all discriminator micro-batches, then all
    generator micro-batches, so it equals one large batch). The data at each global sample position is fixed by the
    seed (see `sampling`), so runs are reproducible and resume exactly."""

    def __init__(self, config: TokenizerTrainConfig, log_with: str | None = "tensorboard"):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config = cfg = config
        self.out = Path(cfg.train.output_dir)
        # Sources are opened first: a wrong path fails before any model is built.
        self.sources = [open_source(s) for s in cfg.data.sources]
        self.val_sources = [open_source(s) for s in cfg.data.val_sources]

        # Gradient accumulation is done here (D's micro-batches, then G's), not by accelerate.
        self.accelerator = acc = Accelerator(
            mixed_precision=cfg.train.mixed_precision,
            log_with=log_with,
            project_dir=str(self.out),
        )
        self.per_device = per_device_batch(
            cfg.train.batch_size, acc.num_processes, cfg.train.grad_accum
        )

        set_seed(cfg.train.seed)  # same initial weights on every process
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

        o = cfg.optim
        self.clip = o.grad_clip or math.inf
        opt_g = torch.optim.AdamW(
            self.generator.parameters(), o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        opt_d = torch.optim.AdamW(
            self.discriminators.parameters(), o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        total = cfg.train.max_steps

        def schedule(step: int) -> float:
            return warmup_cosine(step, o.warmup_steps, total, o.min_lr_ratio)

        # Schedulers are stepped once per optimizer step by us (not prepared: accelerate
        # would step them once per process).
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, schedule)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, schedule)
        self.gen, self.disc, self.opt_g, self.opt_d = acc.prepare(
            self.generator, self.discriminators, opt_g, opt_d
        )
        self.ema = None
        if o.ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(o.ema_decay))
        state = {
            "generator": self.gen,
            "discriminators": self.disc,
            "optimizer_g": self.opt_g,
            "optimizer_d": self.opt_d,
            "scheduler_g": self.sched_g,
            "scheduler_d": self.sched_d,
        }
        if self.ema is not None:
            state["ema"] = self.ema
        self.checkpoints = CheckpointManager(
            acc, self.out / "checkpoints", cfg.train.keep_checkpoints, state
        )

        self.step = 0
        self.counts = {"unreadable": 0, "silent": 0}
        self.messages = 0
        self.interrupted = False  # set by SIGINT/SIGTERM on this process
        self.stop_requested = False  # agreed by all processes at the end of a step
        self.last_metrics: dict = {}

    # ---- data -----------------------------------------------------------------------
    def _loader(self, start_position: int):
        cfg = self.config
        return crop_loader(
            self.sources,
            cfg.data,
            cfg.train.seed,
            self.per_device,
            self.accelerator,
            start_position,
        )

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

    def train_step(self, batches) -> dict[str, float]:
        """One optimizer step of each model over `grad_accum` micro-batches: all of the
        discriminators' micro-batches first, then the generator's (so accumulation equals
        one big batch). Returns values averaged over micro-batches and processes."""
        acc = self.accelerator
        adversarial = self.step >= self.config.optim.mel_only_steps
        counts = torch.zeros(3, device=acc.device)
        micro = []
        for _ in range(self.config.train.grad_accum):
            batch = next(batches)
            counts[0] += batch["unreadable"]
            counts[1] += batch["silent"]
            for message in batch["problems"]:
                if self.messages < MAX_PROBLEM_MESSAGES:
                    tqdm.write(f"[process {acc.process_index}] {message}")
                self.messages += 1
            audio = batch["audio"].to(acc.device, non_blocking=True)
            micro.append((audio, self.semantic_latents(audio)))
        logs: dict[str, torch.Tensor] = {}
        cached: dict = {}
        if adversarial:
            self._discriminator_phase(micro, cached, logs)
        self._generator_phase(micro, cached, adversarial, logs)
        counts[2] = float(self.interrupted)
        keys = sorted(logs)
        values = acc.reduce(torch.stack([logs[k].detach().float() for k in keys]), reduction="mean")
        counts = acc.reduce(counts, reduction="sum")
        self.counts["unreadable"] += int(counts[0])
        self.counts["silent"] += int(counts[1])
        self.stop_requested = bool(counts[2] > 0)  # any process interrupted → all stop together
        lrs = (
            self.opt_g.param_groups[0]["lr"],
            self.opt_d.param_groups[0]["lr"],
        )  # used by this step
        self.sched_g.step()
        if adversarial:  # D's warm-up starts with its first update (after mel-only steps)
            self.sched_d.step()
        if self.ema is not None:
            self.ema.update_parameters(acc.unwrap_model(self.gen))
        self.step += 1
        out = dict(zip(keys, values.tolist()))
        out["lr/generator"], out["lr/discriminators"] = lrs
        out["data/unreadable_skipped"] = self.counts["unreadable"]
        out["data/silent_skipped"] = self.counts["silent"]
        return out

    # ---- monitoring -----------------------------------------------------------------
    def _export_module(self) -> nn.Module:
        """The generator whose weights are exported and validated (EMA if enabled)."""
        return self.ema.module if self.ema is not None else self.accelerator.unwrap_model(self.gen)

    @torch.no_grad()
    def validate(self, audio: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """Reconstruct the validation crops; mel/STFT distances (and PESQ/STOI if data.val_speech)."""
        gen = self._export_module()
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
        try:
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
        except Exception:
            return
        if not hasattr(writer, "add_audio"):
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

    def _log(self, values: dict) -> None:
        self.last_metrics = {"step": self.step, **values}
        self.accelerator.log(values, step=self.step)
        if self.accelerator.is_main_process:
            with (self.out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(self.last_metrics) + "\n")

    # ---- checkpoints and export -----------------------------------------------------
    def trainer_state(self) -> dict:
        return {
            "samples_seen": self.step * self.config.train.batch_size,
            "global_batch": self.config.train.batch_size,
            "num_processes": self.accelerator.num_processes,
            "skipped": dict(self.counts),
        }

    def save_checkpoint(self) -> Path:
        return self.checkpoints.save(self.step, self.trainer_state())

    def resume(self, resume) -> bool:
        state = self.checkpoints.resume(resume, self.config.train.batch_size)
        if state is None:
            return False
        self.step = int(state["step"])
        self.counts = dict(state.get("skipped", self.counts))
        return True

    def export(self) -> Path:
        """Write the tokenizer (semantic encoder + trained parts, EMA weights if enabled) as a
        save_pretrained folder `output_dir/model`."""
        folder = self.out / "model"
        if self.accelerator.is_main_process:
            state = self.tokenizer.state_dict()
            state.update(
                {k: v for k, v in self._export_module().state_dict().items() if k in state}
            )
            write_pretrained(folder, self.tokenizer.config.to_dict(), state)
        self.accelerator.wait_for_everyone()
        return folder

    # ---- the loop -------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        if self.interrupted:  # a second Ctrl-C: stop now, without a checkpoint
            raise KeyboardInterrupt
        self.interrupted = True  # acted on after the step, once all processes agree
        tqdm.write("interrupted: checkpointing after this step (again to stop at once)")

    def run(self, resume=None, stop_after_steps: int | None = None) -> TrainResult:
        """Train to `train.max_steps` (or `stop_after_steps` more steps, or SIGINT/SIGTERM),
        checkpointing every `checkpoint_every` steps and when stopped early."""
        cfg, acc = self.config, self.accelerator
        resumed = self.resume(resume)
        if not resumed and self.checkpoints.latest() is not None:
            raise ConfigError(
                f"{self.checkpoints.root} already holds checkpoints; pass --resume to continue that run "
                "or choose another train.output_dir"
            )
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(dump_yaml(cfg))
        if acc.log_with:
            acc.init_trackers("tensorboard", config=_flat(to_dict(cfg)))
        batches = iter(self._loader(self.step * cfg.train.batch_size))
        val_audio = (
            self.validation_batch()
            if acc.is_main_process and (cfg.train.val_every or cfg.train.audio_every)
            else None
        )
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        end = (
            cfg.train.max_steps
            if stop_after_steps is None
            else min(cfg.train.max_steps, self.step + stop_after_steps)
        )
        bar = tqdm(
            total=cfg.train.max_steps,
            initial=self.step,
            desc="train tokenizer",
            unit="step",
            disable=not (acc.is_main_process and cfg.train.progress),
            dynamic_ncols=True,
        )
        try:
            while self.step < end:
                values = self.train_step(batches)
                bar.update(1)
                bar.set_postfix(
                    mel=f"{values['loss/mel']:.3f}",
                    g=f"{values['loss/generator']:.2f}",
                    refresh=False,
                )
                if self.step % cfg.train.log_every == 0 or self.step == end:
                    self._log(values)
                media = cfg.train.audio_every and self.step % cfg.train.audio_every == 0
                if (cfg.train.val_every and self.step % cfg.train.val_every == 0) or media:
                    if acc.is_main_process:
                        metrics, recon = self.validate(val_audio)
                        acc.log(metrics, step=self.step)
                        with (self.out / "metrics.jsonl").open("a") as f:
                            f.write(json.dumps({"step": self.step, **metrics}) + "\n")
                        if media:
                            self.log_media(val_audio, recon)
                    acc.wait_for_everyone()
                if (
                    self.step % cfg.train.checkpoint_every == 0
                    or self.stop_requested
                    or self.step == end
                ):
                    self.save_checkpoint()
                if self.stop_requested:
                    bar.write(f"stopped at step {self.step}; resume with --resume")
                    break
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        model_dir = self.export() if self.step >= cfg.train.max_steps else None
        if self.counts["unreadable"] or self.counts["silent"]:
            logger.warning(
                "skipped %d unreadable and %d silent data items",
                self.counts["unreadable"],
                self.counts["silent"],
            )
        acc.end_training()
        return TrainResult(self.step, self.out, model_dir, self.last_metrics)


def train_tokenizer(
    config: TokenizerTrainConfig,
    resume=None,
    stop_after_steps: int | None = None,
    log_with: str | None = "tensorboard",
) -> TrainResult:
    """Build a `TokenizerTrainer` and run it (see its docs)."""
    return TokenizerTrainer(config, log_with).run(resume, stop_after_steps)
