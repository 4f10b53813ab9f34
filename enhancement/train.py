"""Train the latent denoiser on accelerate: noisy latents → clean latents, MSE (paper).

One loop for 1 CPU, 1 GPU or N GPUs (`accelerate launch`). Latents come from the
frozen tokenizer on the fly (optionally bf16) or from cached latent datasets. Resume
is exact: model / optimizer / scheduler / EMA / RNG in sonotok's safe checkpoint format
(`sonotok.core.checkpointing`), the step in `trainer_state.json`; every
example is a pure function of (seed, stream position), so the step restores the data position.

Layout of `output_dir`: config.yaml, checkpoints/step_XXXXXXXX/ (resumable state), model/
(latest enhancement folder with EMA weights, loadable by EnhancementPipeline.from_pretrained),
samples/step_<N>/*.wav (validation audio), logs/ (tensorboard).
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import torch

from sonotok.core.checkpointing import CheckpointManager
from sonotok.tokenizer import AudioTokenizer
from sonotok.tokenizer.train import ShardedPositionSampler, dump_yaml

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
CHECKPOINT_PREFIX = "step_"


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


# ---- export ------------------------------------------------------------------------------
def export_model(model, ema) -> LatentDenoiser:
    """A CPU copy holding the weights to ship (EMA when enabled); touches no RNG."""
    out = copy.deepcopy(model).cpu()
    if ema is not None:
        ema.copy_to(out.parameters())
    return out.eval()


# ---- the loop ----------------------------------------------------------------------------
def lr_lambda(config: EnhancementTrainConfig):
    t = config.train

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        progress = min(1.0, (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps))
        return t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def train(
    config: EnhancementTrainConfig,
    tokenizer: AudioTokenizer | None = None,
    resume: bool = True,
    stop_at: int | None = None,
) -> Path:
    """Run (or continue) training; returns the folder of the exported model.

    stop_at: leave after this step (a checkpoint is written there), as if interrupted;
    the schedule still follows train.max_steps.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    t = config.train
    output_dir = Path(config.output_dir)
    config.data.kind()
    check_data(config.data)  # every clip unreadable or silent: one clear error, before any work
    accelerator = Accelerator(
        mixed_precision=t.mixed_precision,
        log_with=t.log_with or None,
        project_dir=str(output_dir / "logs"),
    )
    set_seed(t.seed)
    device = accelerator.device
    if tokenizer is None:
        tokenizer = AudioTokenizer.from_pretrained(
            config.tokenizer, device=device, compute_dtype=config.tokenizer_dtype
        )
    else:
        tokenizer = tokenizer.to(device).set_compute_dtype(config.tokenizer_dtype)
    if config.model.latent_dim != tokenizer.latent_dim:
        raise DataError(
            f"model.latent_dim={config.model.latent_dim} but the tokenizer makes {tokenizer.latent_dim}-d latents; "
            f"set model.latent_dim={tokenizer.latent_dim}"
        )
    model = LatentDenoiser(config.model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    ema = EMAModel(model.parameters(), decay=t.ema_decay) if t.ema_decay else None
    objects = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    if ema is not None:
        objects["ema"] = ema
    checkpoints = CheckpointManager(
        accelerator, output_dir / "checkpoints", t.keep_checkpoints, objects
    )
    step = 0
    last = checkpoints.resolve("latest") if resume else None
    if last is not None:
        step = int(checkpoints.load(last)["step"])
        logger.info("resumed from %s (step %d)", last, step)
    if ema is not None:
        ema.to(device)
    if accelerator.is_main_process:
        (output_dir / "config.yaml").write_text(dump_yaml(config))
        if t.log_with:
            accelerator.init_trackers("enhancement")

    dataset = build_dataset(
        config.data, config.data, t.seed, config.data.segment_seconds, tokenizer.sample_rate
    )
    per_step = t.batch_size * accelerator.num_processes
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=t.batch_size,
        sampler=ShardedPositionSampler(
            t.batch_size, accelerator.num_processes, accelerator.process_index, step * per_step
        ),
        collate_fn=collate,
        num_workers=config.data.num_workers,
        generator=torch.Generator().manual_seed(t.seed),  # leaves the global torch RNG alone
    )
    val_examples = []
    if config.validation.every and config.validation.num_examples and accelerator.is_main_process:
        v = validation_source(config)
        val_data = build_dataset(
            v if (v.clean is not None or v.paired) else config.data,
            config.data,
            v.seed,
            v.seconds,
            tokenizer.sample_rate,
        )
        val_examples = [val_data[i] for i in range(v.num_examples)]

    from tqdm import tqdm

    bar = tqdm(
        total=t.max_steps,
        initial=min(step, t.max_steps),
        desc="train enhancement",
        disable=not accelerator.is_main_process or None,
    )
    last_step = min(t.max_steps, stop_at or t.max_steps)
    for examples in loader:
        if step >= last_step:
            break
        model.train()
        noisy, clean, mask = to_latents(examples, tokenizer, device)
        with accelerator.autocast():
            pred = model(noisy, mask)
        loss = latent_loss(pred.float(), clean, mask, t.loss)
        accelerator.backward(loss)
        grad_norm = (
            accelerator.clip_grad_norm_(model.parameters(), t.grad_clip) if t.grad_clip else None
        )
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(model.parameters())
        step += 1
        bar.update(1)
        if step % t.log_every == 0 or step == t.max_steps:
            values = {
                "train/loss": accelerator.reduce(loss.detach(), "mean").item(),
                "train/lr": scheduler.get_last_lr()[0],
            }
            if grad_norm is not None:
                values["train/grad_norm"] = float(grad_norm)
            values["train/loss_identity"] = float(latent_loss(noisy, clean, mask, t.loss))
            bar.set_postfix(loss=f"{values['train/loss']:.4f}")
            if t.log_with:
                accelerator.log(values, step=step)
        if val_examples and (step % config.validation.every == 0 or step == t.max_steps):
            shipped = export_model(accelerator.unwrap_model(model), ema).to(device)
            run_validation(accelerator, shipped, config, tokenizer, val_examples, step, output_dir)
        if step % t.checkpoint_every == 0 or step == last_step:
            checkpoints.save(step, {"samples_seen": step * per_step})
            if accelerator.is_main_process:
                save_enhancement(
                    output_dir / "model",
                    export_model(accelerator.unwrap_model(model), ema),
                    None,
                    config.tokenizer,
                )
    bar.close()
    accelerator.end_training()
    return output_dir / "model"
