"""Validation during training: latent MSE against the identity map, and PESQ / STOI of the
noisy and the enhanced audio against the clean reference on a fixed held-out set."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from sonotok.core.audio import restore_rate_and_length, write_audio
from sonotok.tokenizer.interface import Tokenizer

from .data import Example, pad_latents
from .denoiser import LatentDenoiser, latent_loss
from .pipeline import EnhancementPipeline, TokenizerDenoiser

logger = logging.getLogger(__name__)


def to_latents(
    examples: list[Example], tokenizer: Tokenizer | None, device
) -> tuple[torch.Tensor, ...]:
    """Examples → noisy (B, T, D), clean (B, T, D), mask (B, T)."""
    if examples[0].noisy.dim() == 2:  # cached latents
        noisy, mask = pad_latents([e.noisy for e in examples])
        clean, _ = pad_latents([e.clean for e in examples])
        return noisy.to(device), clean.to(device), mask.to(device)
    with torch.no_grad():
        z = tokenizer.encode([e.noisy for e in examples] + [e.clean for e in examples])
    noisy, mask = pad_latents(z[: len(examples)])
    clean, _ = pad_latents(z[len(examples) :])
    return noisy, clean, mask


def speech_scores(
    clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000
) -> dict[str, float]:
    """Wideband PESQ and STOI (NaN where PESQ finds no speech, e.g. on synthetic signals)."""
    from pesq import pesq
    from pystoi import stoi

    n = min(clean.shape[0], estimate.shape[0])
    clean, estimate = clean[:n].astype(np.float64), estimate[:n].astype(np.float64)
    try:
        p = float(pesq(sample_rate, clean, estimate, "wb"))
    except Exception:  # pesq raises NoUtterancesError / BufferTooShortError on non-speech
        p = float("nan")
    return {"pesq": p, "stoi": float(stoi(clean, estimate, sample_rate, extended=False))}


@torch.no_grad()
def validate(
    model: LatentDenoiser, tokenizer: Tokenizer, examples: list[Example], device
) -> tuple[dict, list]:
    """Latent MSE (denoised and identity) and, for audio examples, PESQ / STOI of noisy and
    enhanced audio against the clean reference. Returns metrics and the enhanced waves."""
    model.eval()
    noisy, clean, mask = to_latents(examples, tokenizer, device)
    denoised = model(noisy, mask)
    metrics = {
        "val/latent_mse": float(latent_loss(denoised, clean, mask)),
        "val/latent_mse_identity": float(latent_loss(noisy, clean, mask)),
    }
    enhanced = []
    if examples[0].noisy.dim() == 1:
        pipe = EnhancementPipeline(TokenizerDenoiser(tokenizer, model), chunk_seconds=None)
        scores: dict[str, list[float]] = {}
        rates = (tokenizer.sample_rate, tokenizer.output_sample_rate)
        for e in examples:
            y = pipe.enhance_16k(e.noisy[None])[0]  # back to the clean reference's rate:
            y = restore_rate_and_length(y, rates[1], rates[0], e.noisy.shape[-1])
            enhanced.append(y)
            for prefix, est in (("noisy", e.noisy), ("enhanced", y)):
                for k, v in speech_scores(e.clean.numpy(), est.numpy()).items():
                    scores.setdefault(f"val/{k}_{prefix}", []).append(v)
        metrics.update(
            {
                k: float(np.nanmean(v)) if not np.all(np.isnan(v)) else float("nan")
                for k, v in scores.items()
            }
        )
    return metrics, enhanced


def run_validation(
    accelerator, shipped: LatentDenoiser, config, tokenizer, examples, step: int, output_dir: Path
) -> dict:
    """Score `shipped` (the weights that would be exported) and write example audio; the
    metrics are returned for the trainer's log line (metrics.jsonl, TensorBoard)."""
    metrics, enhanced = validate(shipped, tokenizer, examples, accelerator.device)
    logger.info("step %d validation: %s", step, {k: round(v, 4) for k, v in metrics.items()})
    samples = output_dir / "samples" / f"step_{step}"
    writer = None
    if config.train.log_with == "tensorboard":
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
    for i, (e, y) in enumerate(zip(examples[: config.validation.audio_examples], enhanced)):
        for name, wave in (("noisy", e.noisy), ("enhanced", y), ("clean", e.clean)):
            write_audio(samples / f"{i}_{name}.wav", wave, tokenizer.sample_rate)
            if writer is not None:
                writer.add_audio(
                    f"example_{i}/{name}",
                    wave[None].clamp(-1, 1),
                    step,
                    sample_rate=tokenizer.sample_rate,
                )
    return metrics
