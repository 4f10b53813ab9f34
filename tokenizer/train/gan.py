"""What the GAN recipes share, on the core `Trainer`: crops (`CropTrainer`) and one GAN step.

`CropTrainer` adds what the tokenizer, codec and MAE recipes share: audio crops drawn by
global sample position (`data`, `sampling`) and counts of skipped items. `GANTrainer` adds the
discriminator/generator step both GAN recipes run (tokenizer: `trainer`, codec: `codec`):
the discriminators are updated first on each batch (on real and detached fake crops), then
the generator on the recipe's own loss + adversarial + feature matching; validation, media
logging and the shipped (EMA) model are shared too. A recipe builds its generator, calls
`setup_gan`, and implements `generator_loss` (plus the optional hooks `generator_inputs`,
`discriminators_due`, `step_statistics`, `validation_statistics`) and `export`.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math

import torch
from torch import nn
from tqdm import tqdm

from sonotok.core.audio import resample
from sonotok.core.training import Trainer, grouped

from .data import AudioCropDataset, collate_crops, crop_loader, open_source
from .discriminators import build_discriminators
from .losses import discriminator_hinge, feature_matching, generator_hinge, mean_score
from .validation import mel_distance, speech_scores, stft_distance

logger = logging.getLogger(__name__)

MAX_PROBLEM_MESSAGES = 20  # per process; the counts keep going in the logs
PESQ_RATE = 16000  # wideband PESQ is defined at 16 kHz


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


def _aligned(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both cut to the shorter length (a codec may pad its output to whole frames)."""
    n = min(real.shape[-1], fake.shape[-1])
    return real[..., :n], fake[..., :n]


class CropTrainer(Trainer):
    """A `Trainer` on fixed-length audio crops (the tokenizer, codec and MAE recipes).

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

    #: the rate crops are read at (a codec recipe sets its model's rate)
    crop_sample_rate = 16000

    def batches(self):
        """The `grad_accum` crop batches of each step, from data position `self.step`.

        The loader's iterator is made with the global RNG forked: making it draws a seed,
        which would shift the random stream of a resumed run (restored RNG, then a draw)
        against an uninterrupted one (drew at step 0) — visible with dropout or noise."""
        cfg = self.config
        loader = crop_loader(
            self.sources,
            cfg.data,
            cfg.train.seed,
            self.per_device,
            self.accelerator,
            self.step * cfg.train.batch_size,
            self.crop_sample_rate,
        )
        with torch.random.fork_rng(devices=[]):
            iterator = iter(loader)
        return grouped(iterator, cfg.train.grad_accum)

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


class GANTrainer(CropTrainer):
    """A generator against discriminators on crops; the recipe supplies the generator's loss.

    The generator's forward takes `generator_inputs(audio)` and returns a tuple whose first
    item is the reconstruction (B, N'), compared on the first min(N, N') samples. Gradient
    accumulation is explicit: all discriminator micro-batches, then all generator
    micro-batches, so it equals one large batch. Hinge GAN losses unless the recipe sets
    `d_loss` / `g_loss`."""

    progress_keys = ("loss/mel", "loss/generator")

    #: the model's audio rate (validation, media); a recipe sets it from its model
    sample_rate = 16000

    def __init__(self, config, log_with: str | None = "config"):
        self.val_sources = [open_source(s) for s in config.data.val_sources]
        super().__init__(config, log_with)
        self.d_loss, self.g_loss = discriminator_hinge, generator_hinge
        self._validation_audio: torch.Tensor | None = None

    def setup_gan(
        self, generator: nn.Module, parameters=None, discriminator_clip: float | None = None
    ) -> None:
        """With the recipe's generator (on the device, training mode): build the
        discriminators, one optimizer and scheduler per model (`parameters`: the generator's
        trained ones, default all), EMA, and hand them to accelerate.
        `discriminator_clip` None: the discriminators clip at optim.grad_clip too (0: never)."""
        cfg, acc = self.config, self.accelerator
        self.generator = generator
        self.discriminators, self.disc_weights = build_discriminators(cfg.discriminators)
        self.clip = cfg.optim.grad_clip or math.inf
        d_clip = discriminator_clip
        self.d_clip = self.clip if d_clip is None else (d_clip or math.inf)
        opt_g = self.make_optimizer(generator.parameters() if parameters is None else parameters)
        opt_d = self.make_optimizer(self.discriminators.parameters())
        self.sched_g, self.sched_d = self.make_scheduler(opt_g), self.make_scheduler(opt_d)
        self.make_ema(self.generator)
        self.gen, self.disc, self.opt_g, self.opt_d = acc.prepare(
            self.generator, self.discriminators, opt_g, opt_d
        )

    def checkpoint_objects(self) -> dict:
        return {
            "generator": self.gen,
            "discriminators": self.disc,
            "optimizer_g": self.opt_g,
            "optimizer_d": self.opt_d,
            "scheduler_g": self.sched_g,
            "scheduler_d": self.sched_d,
        }

    # ---- recipe hooks -----------------------------------------------------------------
    def generator_inputs(self, audio: torch.Tensor) -> tuple:
        """The generator's forward arguments for a crop batch (made once per micro-batch)."""
        return (audio,)

    @abc.abstractmethod
    def generator_loss(self, inputs: tuple, out: tuple, logs: dict, n: int):
        """The recipe's own (non-adversarial) generator loss on one micro-batch of `n`, its
        terms logged with `_add`. Returns (real, fake, loss): the audio pair the
        discriminators judge and the loss tensor."""

    def discriminators_due(self) -> bool:
        """Whether the discriminators step this (adversarial) step."""
        return True

    def step_statistics(self) -> dict[str, float]:
        """Extra values of the step, after both phases (may be collective)."""
        return {}

    def validation_statistics(self, out: tuple) -> dict[str, float]:
        """Extra validation values from the shipped generator's output."""
        return {}

    # ---- data -------------------------------------------------------------------------
    def validation_audio(self) -> torch.Tensor:
        """`validation_batch()`, made once."""
        if self._validation_audio is None:
            self._validation_audio = self.validation_batch()
        return self._validation_audio

    def validation_batch(self) -> torch.Tensor:
        """The fixed held-out crops (val_sources; training sources with another seed if none)."""
        cfg = self.config
        held_out = bool(self.val_sources)
        sources = self.val_sources if held_out else self.sources
        settings = cfg.data.val_sources if held_out else cfg.data.sources
        if not held_out:
            logger.warning("data.val_sources is empty: validating on training audio (other crops)")
        dataset = AudioCropDataset(
            sources,
            [s.weight for s in settings],
            cfg.data.val_segment_samples,
            cfg.train.seed + 1,
            cfg.data.silence_db,
            cfg.data.max_attempts,
            self.sample_rate,
        )
        return collate_crops([dataset[i] for i in range(cfg.data.val_items)])["audio"]

    # ---- one optimisation step --------------------------------------------------------
    def _sync(self, model, last: bool):
        """Gradient all-reduce only on the last micro-batch of a step."""
        return contextlib.nullcontext() if last else self.accelerator.no_sync(model)

    def _discriminator_phase(self, micro, cached: dict, logs: dict) -> None:
        """Update the discriminators on every micro-batch's real and (detached) fake audio."""
        acc, n = self.accelerator, len(micro)
        for i, inputs in enumerate(micro):
            with self._sync(self.disc, i == n - 1):
                if n == 1:  # the generator graph is kept for its own update
                    cached[i] = self.gen(*inputs)
                    fake = cached[i][0].detach()
                else:  # with accumulation, G's pass is redone after D has stepped
                    with torch.no_grad():
                        fake = self.gen(*inputs)[0]
                real, fake = _aligned(inputs[0], fake)
                real_out, fake_out = _split(self.disc(torch.cat([real, fake])), real.shape[0])
                loss_d = sum(
                    w * self.d_loss(real_out[k], fake_out[k]) for k, w in self.disc_weights.items()
                )
                acc.backward(loss_d / n)
            _add(logs, "loss/discriminators", loss_d, n)
            for k in self.disc_weights:
                _add(logs, f"score/{k}_real", mean_score(real_out[k]), n)
                _add(logs, f"score/{k}_fake", mean_score(fake_out[k]), n)
        logs["grad_norm/discriminators"] = acc.clip_grad_norm_(self.disc.parameters(), self.d_clip)
        self.opt_d.step()
        self.opt_d.zero_grad(set_to_none=True)

    def _generator_phase(self, micro, cached: dict, adversarial: bool, logs: dict) -> None:
        """Update the generator: the recipe's loss (+ adversarial + feature matching)."""
        acc, lam, n = self.accelerator, self.config.loss, len(micro)
        disc = acc.unwrap_model(self.disc)  # judged without DDP sync: D is not updated here
        for i, inputs in enumerate(micro):
            with self._sync(self.gen, i == n - 1):
                out = cached.pop(i) if i in cached else self.gen(*inputs)
                real, fake, loss_g = self.generator_loss(inputs, out, logs, n)
                if adversarial:
                    disc.requires_grad_(False)
                    with torch.no_grad():
                        real_out = disc(real)
                    fake_out = disc(fake)
                    disc.requires_grad_(True)
                    w = self.disc_weights
                    l_adv = sum(w[k] * self.g_loss(fake_out[k]) for k in w)
                    l_fm = sum(w[k] * feature_matching(real_out[k], fake_out[k]) for k in w)
                    loss_g = loss_g + lam.adversarial * l_adv + lam.feature_matching * l_fm
                    _add(logs, "loss/adversarial", l_adv, n)
                    _add(logs, "loss/feature_matching", l_fm, n)
                acc.backward(loss_g / n)
            _add(logs, "loss/generator", loss_g, n)
        logs["grad_norm/generator"] = acc.clip_grad_norm_(self.gen.parameters(), self.clip)
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)

    def train_step(self, micro_batches: list[dict]) -> dict[str, float]:
        """One generator step (and, when due, one discriminator step first) over the step's
        `grad_accum` micro-batches. Returns values averaged over micro-batches and processes."""
        adversarial = self.step >= self.config.optim.mel_only_steps
        update_d = adversarial and self.discriminators_due()
        micro = [self.generator_inputs(self.audio(batch)) for batch in micro_batches]
        logs: dict[str, torch.Tensor] = {}
        cached: dict = {}
        if update_d:
            self._discriminator_phase(micro, cached, logs)
        self._generator_phase(micro, cached, adversarial, logs)
        out = self.mean_over_processes(logs)
        out.update(self.step_statistics())
        # the rates this step used
        out["lr/generator"] = self.opt_g.param_groups[0]["lr"]
        out["lr/discriminators"] = self.opt_d.param_groups[0]["lr"]
        self.sched_g.step()
        if update_d:  # D's warm-up starts with its first update (after mel-only steps)
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

    # ---- monitoring -------------------------------------------------------------------
    def shipped_model(self) -> nn.Module:
        """The generator whose weights are exported and validated (EMA if enabled)."""
        return self.ema.module if self.ema is not None else self.accelerator.unwrap_model(self.gen)

    @torch.no_grad()
    def validate(self, audio: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """Reconstruct the validation crops; mel/STFT distances (PESQ/STOI if data.val_speech)."""
        gen = self.shipped_model()
        was_training = gen.training
        gen.eval()
        audio = audio.to(self.accelerator.device)
        out = gen(*self.generator_inputs(audio))
        gen.train(was_training)
        audio, recon = _aligned(audio, out[0].float())
        metrics = {
            "val/mel_distance": mel_distance(audio, recon, self.sample_rate),
            "val/stft_distance": stft_distance(audio, recon),
        }
        metrics.update(self.validation_statistics(out))
        if self.config.data.val_speech:
            metrics.update({f"val/{k}": v for k, v in self.speech_scores(audio, recon).items()})
        return metrics, recon

    def speech_scores(self, audio: torch.Tensor, recon: torch.Tensor) -> dict[str, float]:
        """PESQ / STOI at 16 kHz (resampled from the model's rate when it differs)."""
        if self.sample_rate != PESQ_RATE:
            audio, recon = (
                torch.from_numpy(resample(x.cpu().numpy(), self.sample_rate, PESQ_RATE))
                for x in (audio, recon)
            )
        return speech_scores(audio, recon, PESQ_RATE)

    def log_media(self, audio: torch.Tensor, recon: torch.Tensor) -> None:
        """Audio examples and a reference-over-reconstruction log-mel image to TensorBoard."""
        writer = self.tensorboard()
        if writer is None:
            return
        sr = self.sample_rate
        for i in range(min(2, audio.shape[0])):
            for name, wave in (("reference", audio[i]), ("reconstruction", recon[i])):
                clip = wave.clamp(-1, 1).cpu()[None]
                writer.add_audio(f"audio/{i}_{name}", clip, self.step, sample_rate=sr)
            pair = torch.stack([audio[i].to(recon.device), recon[i]]).to(self.accelerator.device)
            mels = self.mel_loss.log_mel(pair).cpu()
            image = torch.cat([mels[0].flip(0), mels[1].flip(0)], dim=0)  # low frequencies down
            image = (image - image.min()) / (image.max() - image.min() + 1e-8)
            writer.add_image(
                f"mel/{i}_reference_over_reconstruction", image, self.step, dataformats="HW"
            )
