"""MAE pretraining of a semantic encoder on accelerate (1 CPU, 1 GPU or N via `accelerate launch`).

Data are fixed-length crops drawn by global sample position (`tokenizer.train.data` and
`sampling`), so a run is a pure function of its config and seed and resumes exactly:
`accelerator.save_state` keeps model, optimizer, LR schedule and RNG states, and
`trainer_state.json` the step (→ data position). Checkpoints live in
`output_dir/checkpoints/step_XXXXXXXX`; the encoder is exported to `output_dir/encoder`
(`SemanticEncoder.save_pretrained`) at every checkpoint and at the end.
"""

from __future__ import annotations

import json
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from sonotok.core.checkpointing import CheckpointManager

from ..config import ConfigError
from ..semantic import SemanticEncoder
from ..train.config import dump_yaml, per_device_batch
from ..train.data import crop_loader, open_source
from ..train.trainer import warmup_cosine
from .config import SemanticTrainConfig
from .model import MAEConfig, MaskedAutoencoder

logger = logging.getLogger(__name__)
NO_DECAY = ("time_pos_embed", "freq_pos_embed", "pos_embed", "mask_token")


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    encoder_dir: Path | None
    loss: float | None


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases, norms (1-D tensors) and embeddings (MAE)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (plain if p.ndim <= 1 or name.split(".")[-1] in NO_DECAY else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def build_mae(settings) -> MaskedAutoencoder:
    config = MAEConfig(
        encoder=settings.encoder,
        decoder_dim=settings.decoder_dim,
        decoder_depth=settings.decoder_depth,
        decoder_heads=settings.decoder_heads,
        mask_ratio=settings.mask_ratio,
        norm_pix_loss=settings.norm_pix_loss,
    )
    encoder = None
    if settings.init_encoder:
        encoder = SemanticEncoder.from_pretrained(settings.init_encoder)
        config.encoder = encoder.config
    return MaskedAutoencoder(config, encoder)


class SemanticTrainer:
    """Builds data, model, optimizer and schedule from a `SemanticTrainConfig`; `run()` trains."""

    def __init__(self, config: SemanticTrainConfig):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config = cfg = config
        self.out = Path(cfg.train.output_dir)
        self.sources = [open_source(s) for s in cfg.data.sources]  # bad paths fail first
        log_with = None if cfg.train.log_with == "none" else cfg.train.log_with
        self.accelerator = acc = Accelerator(
            gradient_accumulation_steps=cfg.train.grad_accum,
            mixed_precision=cfg.train.mixed_precision,
            log_with=log_with,
            project_dir=str(self.out / "logs"),
        )
        self.per_device = per_device_batch(
            cfg.train.batch_size, acc.num_processes, cfg.train.grad_accum
        )
        set_seed(cfg.train.seed)  # same initial weights on every process
        self.mae = build_mae(cfg.model).train()
        o = cfg.optim
        optimizer = torch.optim.AdamW(
            parameter_groups(self.mae, o.weight_decay), o.lr, betas=o.betas
        )
        total = cfg.train.max_steps
        # Stepped once per optimizer step by us, so not prepared (accelerate would step it once
        # per process); checkpointed as a registered object.
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, o.warmup_steps, total, o.min_lr_ratio)
        )
        self.model, self.optimizer = acc.prepare(self.mae, optimizer)
        self.checkpoints = CheckpointManager(
            acc,
            self.out / "checkpoints",
            cfg.train.keep_checkpoints,
            {"model": self.model, "optimizer": self.optimizer, "scheduler": self.schedule},
        )
        self.step = 0
        self.micro_step = 0
        self.skipped = {"unreadable": 0, "silent": 0}
        self.stop_requested = False

    def _batches(self):
        cfg = self.config
        start = self.step * cfg.train.batch_size
        return iter(
            crop_loader(
                self.sources, cfg.data, cfg.train.seed, self.per_device, self.accelerator, start
            )
        )

    def train_step(self, batches) -> float:
        """One optimizer step over grad_accum micro-batches; returns the mean loss (all processes)."""
        cfg, acc = self.config, self.accelerator
        losses = []
        for _ in range(cfg.train.grad_accum):
            batch = next(batches)
            self.skipped["unreadable"] += batch["unreadable"]
            self.skipped["silent"] += batch["silent"]
            for problem in batch["problems"][:3]:
                logger.warning(problem)
            # Masks come from their own generator, seeded by (seed, micro-batch, process), so a
            # resumed run draws the masks an uninterrupted one would.
            masks = torch.Generator(acc.device).manual_seed(
                (cfg.train.seed * 1_000_003 + self.micro_step) * 1009 + acc.process_index
            )
            self.micro_step += 1
            with acc.accumulate(self.model):
                with acc.autocast():
                    loss = self.model(batch["audio"].to(acc.device), masks)["loss"]
                acc.backward(loss)
                if acc.sync_gradients and cfg.optim.grad_clip > 0:
                    acc.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
        self.schedule.step()
        self.step += 1
        return float(acc.reduce(torch.stack(losses).mean(), reduction="mean"))

    def trainer_state(self) -> dict:
        return {
            "samples_seen": self.step * self.config.train.batch_size,
            "global_batch": self.config.train.batch_size,
            "skipped": dict(self.skipped),
        }

    def resume(self, resume) -> bool:
        state = self.checkpoints.resume(resume, self.config.train.batch_size)
        if state is None:
            return False
        self.step = int(state["step"])
        self.micro_step = self.step * self.config.train.grad_accum
        self.skipped = dict(state.get("skipped", self.skipped))
        return True

    def export(self) -> Path:
        """The encoder (with its learned init_bn statistics) as a SemanticEncoder folder."""
        folder = self.out / "encoder"
        if self.accelerator.is_main_process:
            self.accelerator.unwrap_model(self.model).encoder.save_pretrained(folder)
        self.accelerator.wait_for_everyone()
        return folder

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True

    def run(self, resume=None, stop_after_steps: int | None = None) -> TrainResult:
        """Train to `train.max_steps` (or `stop_after_steps` more, or until SIGINT/SIGTERM),
        checkpointing every `checkpoint_every` steps and when stopping."""
        cfg, acc = self.config, self.accelerator
        if not self.resume(resume) and self.checkpoints.latest() is not None:
            raise ConfigError(
                f"{self.checkpoints.root} already holds checkpoints; pass --resume to continue "
                "that run or choose another train.output_dir"
            )
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(dump_yaml(cfg))
        if acc.log_with:
            acc.init_trackers(
                "semantic", config={"lr": cfg.optim.lr, "batch_size": cfg.train.batch_size}
            )
        batches = self._batches()
        end = (
            cfg.train.max_steps
            if stop_after_steps is None
            else min(cfg.train.max_steps, self.step + stop_after_steps)
        )
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(
            total=cfg.train.max_steps,
            initial=self.step,
            desc="train semantic (MAE)",
            unit="step",
            disable=not (acc.is_main_process and cfg.train.progress),
            dynamic_ncols=True,
        )
        loss = None
        try:
            while self.step < end:
                loss = self.train_step(batches)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if self.step % cfg.train.log_every == 0 or self.step == end:
                    values = {"loss": loss, "lr": self.schedule.get_last_lr()[0]}
                    acc.log(values, step=self.step)
                    if acc.is_main_process:
                        with (self.out / "metrics.jsonl").open("a") as f:
                            f.write(json.dumps({"step": self.step, **values}) + "\n")
                if (
                    self.step % cfg.train.checkpoint_every == 0
                    or self.stop_requested
                    or self.step == end
                ):
                    self.checkpoints.save(self.step, self.trainer_state())
                    self.export()
                if self.stop_requested:
                    bar.write(f"stopped at step {self.step}; continue with --resume")
                    break
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        if self.skipped["unreadable"] or self.skipped["silent"]:
            logger.warning(
                "skipped %d unreadable and %d silent data items",
                self.skipped["unreadable"],
                self.skipped["silent"],
            )
        encoder_dir = self.out / "encoder" if (self.out / "encoder").is_dir() else None
        acc.end_training()
        return TrainResult(self.step, self.out, encoder_dir, loss)


def train_semantic(
    config: SemanticTrainConfig, resume=None, stop_after_steps: int | None = None
) -> TrainResult:
    """Build a `SemanticTrainer` and run it (see its docs)."""
    return SemanticTrainer(config).run(resume, stop_after_steps)
