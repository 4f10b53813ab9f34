"""Train the latent denoiser on accelerate: noisy latents → clean latents, MSE (paper).

The loop, checkpoints, exact resume, signals, logging and progress are the core's `Trainer`
(sonotok.core.training). Latents come from the frozen tokenizer on the fly (optionally bf16)
or from cached latent datasets; every example is a pure function of (seed, stream
position), so the step restores the data position.

Layout of `train.output_dir`: config.yaml, checkpoints/step_XXXXXXXX/, metrics.jsonl,
tensorboard/, model/ (the latest enhancement folder with EMA weights, rewritten at every
checkpoint, loadable by EnhancementPipeline.from_pretrained from anywhere: a tokenizer folder
is copied into it, a hub id named), samples/step_<N>/*.wav (validation audio).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from sonotok.core.training import Trainer, grouped
from sonotok.tokenizer.interface import Tokenizer, load_tokenizer
from sonotok.tokenizer.train import ShardedPositionSampler

from .config import EnhancementTrainConfig, ValidationConfig
from .data import (
    AudioSource,
    DataError,
    LatentPairs,
    MixedPairs,
    PairedFolders,
    check_data,
    collate,
)
from .denoiser import LatentDenoiser, latent_loss
from .mixing import MixConfig
from .pipeline import save_enhancement
from .validation import run_validation, to_latents

logger = logging.getLogger(__name__)


# ---- data --------------------------------------------------------------------------------
def build_dataset(source, data, seed: int, seconds: float, sample_rate: int = 16000):
    """A training or validation dataset from a DataConfig / ValidationConfig-like object."""
    segment = int(round(seconds * sample_rate))
    kind = "latents" if getattr(source, "latents", None) else "paired" if source.paired else "mixed"
    if kind == "latents":
        spec = source.latents
        frames = int(round(seconds * 25))
        return LatentPairs(spec["noisy"], spec["clean"], spec.get("key", "id"), frames, seed)
    if kind == "paired":
        return PairedFolders(
            source.paired["noisy"], source.paired["clean"], segment, seed, sample_rate
        )
    if source.clean is None or source.noise is None:
        raise DataError("mixing on the fly needs both clean and noise sources")
    mix = MixConfig(snr_db=data.snr_db, gain_db=data.gain_db, reverb_prob=data.reverb_prob)
    rirs = AudioSource(source.rir, "rir") if source.rir is not None else None
    return MixedPairs(
        AudioSource(source.clean, "clean"),
        AudioSource(source.noise, "noise"),
        mix,
        segment,
        seed,
        rirs,
        sample_rate,
    )


def validation_source(config: EnhancementTrainConfig) -> ValidationConfig:
    """The validation sources, falling back to the training ones."""
    v = config.validation
    if v.clean is None and v.paired is None:
        if config.data.latents:
            return v
        v = ValidationConfig(
            **{
                **v.__dict__,
                "clean": config.data.clean,
                "noise": config.data.noise,
                "rir": config.data.rir,
                "paired": config.data.paired,
            }
        )
    return v


# ---- the recipe --------------------------------------------------------------------------
class EnhancementTrainer(Trainer):
    """The latent denoiser recipe (see `Trainer` for the loop). `tokenizer`: a Tokenizer
    to use instead of loading `config.tokenizer` (it is then copied into the export)."""

    name = "train enhancement"

    def __init__(self, config: EnhancementTrainConfig, tokenizer: Tokenizer | None = None):
        config.data.kind()
        check_data(config.data)  # every clip unreadable or silent: one clear error, before work
        super().__init__(config)
        device = self.accelerator.device
        self.given_tokenizer = tokenizer is not None
        if tokenizer is None:
            tokenizer = load_tokenizer(
                config.tokenizer, device=device, compute_dtype=config.tokenizer_dtype
            )
        else:
            tokenizer = tokenizer.to(device).set_compute_dtype(config.tokenizer_dtype)
        if config.model.latent_dim != tokenizer.latent_dim:
            raise DataError(
                f"model.latent_dim={config.model.latent_dim} but the tokenizer makes "
                f"{tokenizer.latent_dim}-d latents; set model.latent_dim={tokenizer.latent_dim}"
            )
        self.tokenizer = tokenizer
        self.setup_model(LatentDenoiser(config.model))
        self._validation_examples: list | None = None

    # ---- data and loss ----------------------------------------------------------------
    def batches(self):
        """The `grad_accum` batches of each step from data position `self.step`."""
        cfg, acc = self.config, self.accelerator
        t = cfg.train
        dataset = build_dataset(
            cfg.data, cfg.data, t.seed, cfg.data.segment_seconds, self.tokenizer.sample_rate
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.per_device,
            sampler=ShardedPositionSampler(
                self.per_device, acc.num_processes, acc.process_index, self.step * t.batch_size
            ),
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            generator=torch.Generator().manual_seed(t.seed),  # leaves the global torch RNG alone
        )
        return grouped(loader, t.grad_accum)

    def _loss(self, examples) -> tuple[torch.Tensor, dict]:
        """Latent loss of the denoised latents, and of the noisy ones (the identity map)."""
        kind = self.config.train.loss
        noisy, clean, mask = to_latents(examples, self.tokenizer, self.accelerator.device)
        pred = self.model(noisy, mask)
        identity = latent_loss(noisy, clean, mask, kind)
        return latent_loss(pred.float(), clean, mask, kind), {"loss_identity": identity}

    def train_step(self, micro_batches: list) -> dict[str, float]:
        self.model.train()  # validation may have switched it to eval
        return self.optimize(micro_batches, self._loss)

    # ---- validation and export ----------------------------------------------------------
    def validation_examples(self) -> list:
        """The fixed held-out examples (made once)."""
        if self._validation_examples is None:
            cfg = self.config
            v = validation_source(cfg)
            source = v if (v.clean is not None or v.paired) else cfg.data
            data = build_dataset(source, cfg.data, v.seed, v.seconds, self.tokenizer.sample_rate)
            self._validation_examples = [data[i] for i in range(v.num_examples)]
        return self._validation_examples

    def after_step(self) -> dict[str, float]:
        """Validation (PESQ / STOI, example audio) every validation.every steps and at the end."""
        v, t = self.config.validation, self.config.train
        due = v.every and (self.step % v.every == 0 or self.step == t.max_steps)
        if not (due and v.num_examples and self.accelerator.is_main_process):
            return {}
        examples = self.validation_examples()
        return run_validation(
            self.accelerator,
            self.shipped_model(),
            self.config,
            self.tokenizer,
            examples,
            self.step,
            self.out,
        )

    def export(self) -> Path:
        """model/: the denoiser (EMA weights) and its tokenizer, copied in unless
        `config.tokenizer` is a hub id (then named), so the folder loads from anywhere."""
        reference = self.config.tokenizer
        if self.given_tokenizer or Path(reference).exists():
            save_enhancement(self.export_dir, self.shipped_model(), self._tokenizer_copy())
        else:
            save_enhancement(self.export_dir, self.shipped_model(), None, reference)
        return self.export_dir

    def _tokenizer_copy(self) -> Tokenizer:
        """The tokenizer at full precision (the one in use may hold bf16/fp16 weights)."""
        if self.given_tokenizer or self.config.tokenizer_dtype == "fp32":
            return self.tokenizer
        return load_tokenizer(self.config.tokenizer)


def train(
    config: EnhancementTrainConfig,
    tokenizer: Tokenizer | None = None,
    resume: str | os.PathLike | bool | None = None,
    stop_at: int | None = None,
) -> Path:
    """Train (resume: None, "latest" or a checkpoint folder, see `Trainer.run`); returns the
    folder of the exported model.

    stop_at: leave after this step (a checkpoint is written there), as if interrupted;
    the schedule still follows train.max_steps.
    """
    trainer = EnhancementTrainer(config, tokenizer)
    trainer.run(resume, stop_at=stop_at)
    return trainer.export_dir
