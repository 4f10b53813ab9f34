"""Train the text-to-latent DiT with rectified flow on a latent dataset, on accelerate.

One loop for 1 CPU, 1 GPU or N GPUs (`accelerate launch`): DDP, mixed precision and gradient
accumulation come from `Accelerator`. Resume is exact: model/optimizer/LR/EMA/RNG state in
sonotok's safe checkpoint format (`sonotok.core.checkpointing`), the step in `trainer_state.json`;
data order and every random draw are functions of (seed, step), so nothing else needs saving.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import Tensor

from sonotok.core.checkpointing import CheckpointManager
from sonotok.core.errors import CheckpointError
from sonotok.extraction.extract import as_float, latent_storage

from .config import GenerationTrainConfig
from .dit import DiT
from .hub import GenerationError
from .pipeline import PipelineConfig, TextToAudioPipeline
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


def ema_pipeline(
    cfg: GenerationTrainConfig, model: DiT, ema, text_encoder, tokenizer, stats
) -> TextToAudioPipeline:
    """A pipeline holding a copy of the EMA weights and the training's sampling settings."""
    export = DiT(model.config)
    ema.copy_to(export.parameters())
    return TextToAudioPipeline(
        export.to(next(model.parameters()).device),
        text_encoder,
        tokenizer=tokenizer,
        config=PipelineConfig(
            text_encoder=cfg.text_encoder,
            text_max_length=cfg.text_max_length,
            sway_coef=cfg.sway_coef,
            shift_base_dim=cfg.objective.shift_base_dim,
            latent_mean=stats[0],
            latent_std=stats[1],
        ),
    )


def train(cfg: GenerationTrainConfig, stop_at: int | None = None) -> Path:
    """Run (or resume) training; returns the output folder. `stop_at` ends this invocation
    after that step (as an interruption would), without changing the schedule."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    tc = cfg.train
    out = Path(tc.output_dir)
    accelerator = Accelerator(
        mixed_precision=tc.mixed_precision,
        gradient_accumulation_steps=tc.grad_accum,
        log_with=tc.log_with,
        project_dir=str(out),
    )
    set_seed(tc.seed)
    ds = load_latent_dataset(cfg.data.path, cfg.data.caption_column, cfg.model.latent_dim)
    precomputed = TEXT_STATES_COLUMN in ds.column_names
    rows_ds = ds.with_format("numpy")
    storage = latent_storage(ds)
    if "auto" in (cfg.data.latent_mean, cfg.data.latent_std):
        stats = latent_stats(ds)
    else:
        stats = (float(cfg.data.latent_mean), float(cfg.data.latent_std))
    text_encoder = TextEncoder.from_pretrained(cfg.text_encoder, cfg.text_max_length).to(
        accelerator.device
    )
    if text_encoder.dim != cfg.model.context_dim:
        raise GenerationError(
            f"text encoder {cfg.text_encoder!r} gives {text_encoder.dim}-d states; set model.context_dim={text_encoder.dim}"
        )
    model = DiT(cfg.model)
    model.enable_gradient_checkpointing(tc.gradient_checkpointing)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=tc.lr, betas=tuple(tc.betas), weight_decay=tc.weight_decay
    )
    n_proc = accelerator.num_processes  # prepared LR schedulers step once per process
    lr_scheduler = get_scheduler(
        tc.lr_schedule,
        optimizer,
        num_warmup_steps=tc.warmup_steps * n_proc,
        num_training_steps=tc.max_steps * n_proc,
    )
    ema = EMAModel(model.parameters(), decay=tc.ema_decay)
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    raw = accelerator.unwrap_model(model)
    checkpoints = CheckpointManager(
        accelerator,
        out / "checkpoints",
        tc.keep_checkpoints,
        {"model": model, "optimizer": optimizer, "scheduler": lr_scheduler, "ema": ema},
    )

    step = 0
    resume = {"auto": "latest", "none": None, "": None, None: None}.get(tc.resume, tc.resume)
    try:
        state = checkpoints.resume(resume, global_batch=tc.batch_size * accelerator.num_processes)
    except CheckpointError as err:
        raise GenerationError(
            f"{err}; use a new train.output_dir or --set train.resume=none"
        ) from None
    if state is not None:
        step, stats = int(state["step"]), (state["latent_mean"], state["latent_std"])
        accelerator.print(f"resumed from {checkpoints.root} at step {step}")
    ema.to(accelerator.device)
    if tc.log_with:
        accelerator.init_trackers("generation", config={"max_steps": tc.max_steps, "lr": tc.lr})

    tokenizer = None
    if tc.tokenizer:
        from sonotok.tokenizer import AudioTokenizer

        tokenizer = AudioTokenizer.from_pretrained(tc.tokenizer, device=accelerator.device)

    global_batch = tc.batch_size * n_proc
    end = tc.max_steps if stop_at is None else min(stop_at, tc.max_steps)
    model.train()
    while step < end:
        losses = []
        for micro in range(tc.grad_accum):
            micro_step = step * tc.grad_accum + micro
            gen = torch.Generator(accelerator.device).manual_seed(
                tc.seed * 1_000_003 + micro_step * 1009 + accelerator.process_index
            )
            idx = batch_indices(
                len(ds), global_batch, tc.seed, micro_step, accelerator.process_index, tc.batch_size
            )
            rows = rows_ds[idx]
            cpu_gen = torch.Generator().manual_seed(
                int(torch.randint(0, 2**62, (1,), generator=gen))
            )
            latents, mask = collate(rows, cfg.data.max_frames, cpu_gen, storage)
            latents = ((latents - stats[0]) / stats[1]) * mask[..., None]
            if precomputed:
                context, context_mask = collate(
                    {
                        "latents": rows[TEXT_STATES_COLUMN],
                        "num_frames": [len(s) for s in rows[TEXT_STATES_COLUMN]],
                    },
                    10**9,
                    cpu_gen,
                )
            else:
                context, context_mask = text_encoder(list(rows[cfg.data.caption_column]))
            dev = accelerator.device
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = cfg.objective.loss(
                        model,
                        latents.to(dev),
                        context.to(dev),
                        mask.to(dev),
                        context_mask.to(dev),
                        gen,
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and tc.grad_clip:
                    accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
        ema.step(raw.parameters())
        step += 1
        if not math.isfinite(float(losses[-1])):
            raise GenerationError(
                f"loss is {float(losses[-1])} at step {step}; lower train.lr or check the latents"
            )
        if step % tc.log_every == 0 or step == end:
            value = float(accelerator.reduce(torch.stack(losses).mean(), reduction="mean"))
            accelerator.log({"loss": value, "lr": lr_scheduler.get_last_lr()[0]}, step=step)
            accelerator.print(f"step {step} loss {value:.5f}")
        if step % tc.checkpoint_every == 0 or step == end:
            checkpoints.save(
                step,
                {
                    "latent_mean": stats[0],
                    "latent_std": stats[1],
                    "global_batch": global_batch,
                    "num_processes": accelerator.num_processes,
                },
            )
            if accelerator.is_main_process:
                ema_pipeline(cfg, raw, ema, text_encoder, tokenizer, stats).save_pretrained(
                    out / "pipeline"
                )
        if (
            tc.sample_every
            and step % tc.sample_every == 0
            and tokenizer is not None
            and accelerator.is_main_process
        ):
            pipe = ema_pipeline(cfg, raw, ema, text_encoder, tokenizer, stats)
            _write_samples(accelerator, cfg, pipe, step, out / "samples" / f"step_{step:08d}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return out


def _write_samples(accelerator, cfg, pipe: TextToAudioPipeline, step: int, folder: Path) -> None:
    """Generate `train.sample_prompts` with fixed seeds: wav files, and TensorBoard audio if logging."""
    from sonotok.tokenizer import write_audio

    tc = cfg.train
    waves = pipe(
        tc.sample_prompts,
        seconds=tc.sample_seconds,
        num_steps=tc.sample_steps,
        guidance_scale=tc.sample_guidance,
        seed=tc.seed,
    )
    folder.mkdir(parents=True, exist_ok=True)
    rate = pipe.config.sample_rate
    for i, wave in enumerate(waves):
        write_audio(folder / f"{i:02d}.wav", wave.float().numpy(), rate)
    if tc.log_with and "tensorboard" in str(tc.log_with):
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
        for i, wave in enumerate(waves):
            writer.add_audio(
                f"samples/{i:02d}", wave.float().clamp(-1, 1)[None], step, sample_rate=rate
            )
