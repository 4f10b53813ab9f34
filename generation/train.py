"""Train the text-to-latent DiT with rectified flow on a latent dataset, on accelerate.

The loop, checkpoints, exact resume, signals, logging and progress are the core's `Trainer`
(sonotok.core.training); this recipe adds the latent dataset, the flow-matching loss and
the exported pipeline. Data order and every random draw are functions of (seed, step), so
the step restores the data position. Layout of `train.output_dir`: config.yaml,
checkpoints/, metrics.jsonl, tensorboard/, pipeline/ (EMA weights, rewritten at every
checkpoint) and samples/step_XXXXXXXX/ (with train.sample_every and train.tokenizer).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from sonotok.core.training import Trainer
from sonotok.extraction.extract import as_float, latent_storage

from .config import GenerationTrainConfig
from .dit import DiT
from .dit_pipeline import DiTPipeline
from .errors import GenerationError
from .pipeline import PipelineConfig
from .text import TextEncoder

logger = logging.getLogger(__name__)

TEXT_STATES_COLUMN = "text_states"  # optional precomputed text encoder states [L, C] per row


def load_latent_dataset(path: str, caption_column: str, latent_dim: int):
    """Open a `save_to_disk` folder and check it has latents [T, D], num_frames and captions."""
    import datasets

    if not path or not Path(path).is_dir():
        raise GenerationError(
            f"data.path={path!r}: not a folder; point it at a dataset written by "
            "`Dataset.save_to_disk` (e.g. from `sonotok extract`)"
        )
    ds = datasets.load_from_disk(path)
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise GenerationError(f"{path}: DatasetDict without a 'train' split")
        ds = ds["train"]
    needed = {"latents", "num_frames"} | (
        {caption_column} if TEXT_STATES_COLUMN not in ds.column_names else set()
    )
    missing = sorted(needed - set(ds.column_names))
    if missing:
        raise GenerationError(f"{path}: missing columns {missing}; has {ds.column_names}")
    feature = ds.features["latents"]
    shape = getattr(feature, "shape", None)
    if shape is not None and shape[-1] != latent_dim:
        raise GenerationError(
            f"{path}: latents have {shape[-1]} channels, model.latent_dim is {latent_dim}"
        )
    if len(ds) == 0:
        raise GenerationError(f"{path}: dataset is empty")
    return ds


def batch_indices(
    n: int, global_batch: int, seed: int, micro_step: int, rank: int, per_process: int
) -> list[int]:
    """Row indices of one process's micro-batch `micro_step`, from a per-epoch permutation
    seeded by (seed, epoch); the epoch's last incomplete global batch is dropped."""
    per_epoch = n // global_batch
    if per_epoch == 0:
        raise GenerationError(
            f"dataset has {n} rows, fewer than one global batch ({global_batch}); lower train.batch_size"
        )
    epoch, index = divmod(micro_step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    start = index * global_batch + rank * per_process
    return perm[start : start + per_process].tolist()


def to_float(array, storage: str = "float32") -> Tensor:
    """A stored latents value (numpy) -> float32 tensor [T, D], undoing the bfloat16 bit storage."""
    return as_float(array, storage)


def collate(
    rows: dict, max_frames: int, generator: torch.Generator, storage: str = "float32"
) -> tuple[Tensor, Tensor]:
    """Rows (numpy format) -> padded latents [B, T, D] and mask [B, T]; long rows randomly cropped."""
    pieces = []
    for z, n in zip(rows["latents"], rows["num_frames"]):
        z = to_float(z, storage)[: int(n)]
        if z.shape[0] == 0:
            raise GenerationError("a dataset row has num_frames 0; filter empty rows out")
        if z.shape[0] > max_frames:
            start = int(torch.randint(0, z.shape[0] - max_frames + 1, (1,), generator=generator))
            z = z[start : start + max_frames]
        pieces.append(z)
    length = max(z.shape[0] for z in pieces)
    latents = torch.zeros(len(pieces), length, pieces[0].shape[1])
    mask = torch.zeros(len(pieces), length, dtype=torch.bool)
    for i, z in enumerate(pieces):
        latents[i, : z.shape[0]], mask[i, : z.shape[0]] = z, True
    return latents, mask


def latent_stats(ds, rows: int = 256) -> tuple[float, float]:
    """Scalar mean / std over the valid frames of the first `rows` rows."""
    sub = ds.select(range(min(rows, len(ds)))).with_format("numpy")
    storage = latent_storage(ds)
    values = torch.cat(
        [
            to_float(z, storage)[: int(n)].flatten()
            for z, n in zip(sub["latents"], sub["num_frames"])
        ]
    )
    return float(values.mean()), float(values.std().clamp_min(1e-6))


class GenerationTrainer(Trainer):
    """The flow-matching DiT recipe on a latent dataset (see `Trainer` for the loop)."""

    name = "train generation"
    export_name = "pipeline"

    def __init__(self, cfg: GenerationTrainConfig):
        super().__init__(cfg)
        acc, tc = self.accelerator, cfg.train
        ds = load_latent_dataset(cfg.data.path, cfg.data.caption_column, cfg.model.latent_dim)
        self.dataset, self.rows = ds, ds.with_format("numpy")
        self.precomputed = TEXT_STATES_COLUMN in ds.column_names
        self.storage = latent_storage(ds)
        if "auto" in (cfg.data.latent_mean, cfg.data.latent_std):
            self.stats = latent_stats(ds)
        else:
            self.stats = (float(cfg.data.latent_mean), float(cfg.data.latent_std))
        self.text_encoder = TextEncoder.from_pretrained(cfg.text_encoder, cfg.text_max_length).to(
            acc.device
        )
        if self.text_encoder.dim != cfg.model.context_dim:
            raise GenerationError(
                f"text encoder {cfg.text_encoder!r} gives {self.text_encoder.dim}-d states; "
                f"set model.context_dim={self.text_encoder.dim}"
            )
        model = DiT(cfg.model)
        model.enable_gradient_checkpointing(tc.gradient_checkpointing)
        self.setup_model(model)
        self.tokenizer = None
        if tc.tokenizer:
            from sonotok.tokenizer import AudioTokenizer

            self.tokenizer = AudioTokenizer.from_pretrained(tc.tokenizer, device=acc.device)

    # ---- data and loss ----------------------------------------------------------------
    def batches(self):
        """The `grad_accum` micro-batches of each step from `self.step`: each a function of
        (seed, micro-step, process) only."""
        return self._steps(self.step)

    def _steps(self, step: int):
        n = self.config.train.grad_accum
        while True:
            yield [self._micro_batch(step * n + m) for m in range(n)]
            step += 1

    def _micro_batch(self, micro_step: int) -> tuple:
        """(latents, context, mask, context mask, generator) of this process, on the device."""
        cfg, acc = self.config, self.accelerator
        seed, rank = cfg.train.seed, acc.process_index
        gen = torch.Generator(acc.device).manual_seed(seed * 1_000_003 + micro_step * 1009 + rank)
        idx = batch_indices(
            len(self.dataset),
            self.per_device * acc.num_processes,
            seed,
            micro_step,
            rank,
            self.per_device,
        )
        rows = self.rows[idx]
        cpu_seed = torch.randint(0, 2**62, (1,), generator=gen, device=gen.device)
        cpu_gen = torch.Generator().manual_seed(int(cpu_seed))
        latents, mask = collate(rows, cfg.data.max_frames, cpu_gen, self.storage)
        latents = ((latents - self.stats[0]) / self.stats[1]) * mask[..., None]
        if self.precomputed:
            states = rows[TEXT_STATES_COLUMN]
            text = {"latents": states, "num_frames": [len(s) for s in states]}
            context, context_mask = collate(text, 10**9, cpu_gen)
        else:
            context, context_mask = self.text_encoder(list(rows[cfg.data.caption_column]))
        dev = acc.device
        return latents.to(dev), context.to(dev), mask.to(dev), context_mask.to(dev), gen

    def _loss(self, batch: tuple) -> Tensor:
        latents, context, mask, context_mask, gen = batch
        return self.config.objective.loss(self.model, latents, context, mask, context_mask, gen)

    def train_step(self, micro_batches: list) -> dict[str, float]:
        return self.optimize(micro_batches, self._loss)

    def trainer_state(self) -> dict:
        mean, std = self.stats
        return {**super().trainer_state(), "latent_mean": mean, "latent_std": std}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.stats = (state["latent_mean"], state["latent_std"])

    # ---- pipeline and samples -----------------------------------------------------------
    def pipeline(self) -> DiTPipeline:
        """A pipeline of the shipped (EMA) weights with the training's sampling settings."""
        cfg = self.config
        return DiTPipeline(
            self.shipped_model(),
            self.text_encoder,
            tokenizer=self.tokenizer,
            config=PipelineConfig(
                text_encoder=cfg.text_encoder,
                text_max_length=cfg.text_max_length,
                sway_coef=cfg.sway_coef,
                shift_base_dim=cfg.objective.shift_base_dim,
                latent_mean=self.stats[0],
                latent_std=self.stats[1],
            ),
        )

    def export(self) -> Path:
        """pipeline/: the DiT, scheduler and settings, with the tokenizer copied in when
        train.tokenizer is a folder (named when it is a hub id), so the folder works anywhere."""
        tokenizer = self.config.train.tokenizer
        reference = tokenizer if tokenizer and not Path(tokenizer).exists() else None
        with _keeps_mode(self.shipped_model()):
            self.pipeline().save_pretrained(self.export_dir, tokenizer_reference=reference)
        return self.export_dir

    def after_step(self) -> dict[str, float]:
        tc = self.config.train
        due = tc.sample_every and self.step % tc.sample_every == 0
        if due and self.tokenizer is not None and self.accelerator.is_main_process:
            with _keeps_mode(self.shipped_model()):
                self._write_samples(self.out / "samples" / f"step_{self.step:08d}")
        return {}

    def _write_samples(self, folder: Path) -> None:
        """`train.sample_prompts` with fixed seeds: wav files, and TensorBoard audio if logging."""
        from sonotok.core.audio import write_audio

        tc = self.config.train
        pipe = self.pipeline()
        waves = pipe(
            tc.sample_prompts,
            seconds=tc.sample_seconds,
            num_steps=tc.sample_steps,
            guidance_scale=tc.sample_guidance,
            seed=tc.seed,
        )
        folder.mkdir(parents=True, exist_ok=True)
        rate = pipe.config.sample_rate
        writer = self.tensorboard()
        for i, wave in enumerate(waves):
            write_audio(folder / f"{i:02d}.wav", wave.float().cpu().numpy(), rate)
            if writer is not None:
                clip = wave.float().clamp(-1, 1).cpu()[None]
                writer.add_audio(f"samples/{i:02d}", clip, self.step, sample_rate=rate)


@contextlib.contextmanager
def _keeps_mode(module: torch.nn.Module):
    """Restore `module`'s train/eval mode after a pipeline (which sets eval) used it."""
    training = module.training
    try:
        yield
    finally:
        module.train(training)


def train(
    cfg: GenerationTrainConfig,
    stop_at: int | None = None,
    resume: str | os.PathLike | bool | None = None,
) -> Path:
    """Train (resume: None, "latest" or a checkpoint folder, see `Trainer.run`); returns the
    output folder. `stop_at` ends this invocation after that step (as an interruption would),
    without changing the schedule."""
    GenerationTrainer(cfg).run(resume, stop_at=stop_at)
    return Path(cfg.train.output_dir)
