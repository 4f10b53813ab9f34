"""Rectified flow on latents: training objective, timestep densities and shifts, Euler sampling.

Convention (t = sigma): x_t = (1 - t) * x0 + t * eps, t = 1 is pure noise, the model predicts the
velocity v = eps - x0, and sampling integrates x <- x + (sigma_next - sigma) * v from 1 to 0.
The stepping itself is diffusers' `FlowMatchEulerDiscreteScheduler` (a swappable object).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import GenerationError

# "Diffusion Transformers with Representation Autoencoders" (RAE): base dimension n = 4096.
RAE_BASE_DIM = 4096


def rae_shift_alpha(
    num_tokens: Tensor | float, channels: int, base_dim: int = RAE_BASE_DIM
) -> Tensor | float:
    """RAE dimension-dependent shift alpha = sqrt(m / base_dim), m = tokens * channels."""
    if isinstance(num_tokens, Tensor):
        return torch.sqrt(num_tokens.float() * channels / base_dim)
    return math.sqrt(num_tokens * channels / base_dim)


def shift_timesteps(t: Tensor, alpha: Tensor | float) -> Tensor:
    """t_m = alpha * t / (1 + (alpha - 1) * t): alpha > 1 moves t toward noise (t = 1)."""
    return alpha * t / (1 + (alpha - 1) * t)


def sample_logit_normal(
    batch_size: int,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    density: str = "logit_normal",
) -> Tensor:
    """t = sigmoid(N(mean, std)) : [B] ("uniform": U(0, 1)), via diffusers' timestep-density helper."""
    from diffusers.training_utils import compute_density_for_timestep_sampling

    if density not in ("logit_normal", "uniform"):
        raise GenerationError(f"timestep density {density!r}; expected 'logit_normal' or 'uniform'")
    return compute_density_for_timestep_sampling(
        "none" if density == "uniform" else density,
        batch_size,
        logit_mean=logit_mean,
        logit_std=logit_std,
        device=device,
        generator=generator,
    )


def sway_sigmas(num_steps: int, coef: float | None, dtype: torch.dtype = torch.float64) -> Tensor:
    """Dasheng-AudioGen sway sampling: t = linspace(0,1,n+1); t += s*(cos(pi t/2) - 1 + t); sigma = 1 - t.

    Returns the n+1 sigmas from 1 to 0 ([num_steps + 1], float32, computed in `dtype`);
    coef None or 0 gives uniform steps.
    """
    if num_steps < 1:
        raise GenerationError(f"num_steps={num_steps}; need at least 1 sampling step")
    t = torch.linspace(0, 1, num_steps + 1, dtype=dtype)
    if coef:
        t = t + coef * (torch.cos(math.pi / 2 * t) - 1 + t)
    return (1 - t).float()


@dataclass
class FlowMatchingObjective:
    """Training objective settings; `loss` returns the masked velocity MSE."""

    density: str = "logit_normal"  # or "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift_base_dim: int | None = RAE_BASE_DIM  # None disables the RAE shift
    cond_dropout: float = 0.1  # probability of replacing the text with the null (zero) condition

    def sample_t(
        self, num_frames: Tensor, channels: int, generator: torch.Generator | None
    ) -> Tensor:
        """Logit-normal t shifted per example by its own m = frames * channels : [B]."""
        t = sample_logit_normal(
            len(num_frames),
            self.logit_mean,
            self.logit_std,
            generator,
            num_frames.device,
            self.density,
        )
        if self.shift_base_dim:
            t = shift_timesteps(t, rae_shift_alpha(num_frames, channels, self.shift_base_dim))
        return t

    def loss(
        self,
        model: Callable[..., Tensor],
        x0: Tensor,
        context: Tensor,
        x_mask: Tensor,
        context_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Masked MSE between model(x_t, t, text) and eps - x0.

        x0: [B,T,D] clean latents; context: [B,L,C]; x_mask: [B,T] bool; context_mask: [B,L].
        Random draws (t, noise, dropout) all come from `generator`, for exact resume.
        """
        b, _, d = x0.shape
        num_frames = x_mask.sum(1)
        t = self.sample_t(num_frames, d, generator).to(x0.dtype)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        if self.cond_dropout > 0:
            keep = torch.rand(b, generator=generator, device=x0.device) >= self.cond_dropout
            context = context * keep[:, None, None].to(context.dtype)
        x_t = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
        target = noise - x0
        pred = model(x_t, t, context, x_mask, context_mask)
        weight = x_mask[..., None].to(pred.dtype)
        return ((pred.float() - target.float()) ** 2 * weight).sum() / (weight.sum() * d).clamp_min(
            1
        )


def make_scheduler(shift: float = 1.0):
    """A diffusers `FlowMatchEulerDiscreteScheduler` (timestep = 1000 * sigma)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def set_sigmas(
    scheduler, num_steps: int, sway_coef: float | None, shift: float, device=None
) -> Tensor:
    """Load sway (or uniform) sigmas, RAE-shifted by `shift`, into `scheduler`; returns [n+1]."""
    sigmas = sway_sigmas(num_steps, sway_coef)[:-1]
    scheduler.set_shift(shift)
    scheduler.set_timesteps(sigmas=sigmas.tolist(), device=device)
    return scheduler.sigmas


@torch.no_grad()
def sample(
    model: Callable[..., Tensor],
    scheduler,
    noise: Tensor,
    context: Tensor,
    x_mask: Tensor | None = None,
    context_mask: Tensor | None = None,
    uncond_context: Tensor | None = None,
    uncond_mask: Tensor | None = None,
    guidance_scale: float = 1.0,
    known: Tensor | None = None,
    known_mask: Tensor | None = None,
) -> Tensor:
    """Euler-integrate from `noise` [B,T,D] (sigma 1) to latents (sigma 0) on the scheduler's sigmas.

    `scheduler` is one scheduler for all rows or a list with one per row (rows may share one);
    per-row schedulers let each example keep the sigmas of its own length (the RAE shift), so
    a row's result does not depend on what it is batched with. All need the same step count.
    CFG: v = v_u + g (v_c - v_u) with the null condition `uncond_context` (zeros when None,
    the training-time dropout); g = 1 skips the unconditional pass.
    Inpainting / continuation: where `known_mask` [B,T] is True the state is replaced by the
    known latents noised to the current sigma, and the result there equals `known` exactly.
    """
    x = noise
    do_cfg = guidance_scale != 1.0
    if do_cfg:
        if uncond_context is None:
            uncond_context, uncond_mask = torch.zeros_like(context), context_mask
        if uncond_context.shape[1] != context.shape[1]:  # pad the shorter text to a common length
            length = max(context.shape[1], uncond_context.shape[1])
            context, context_mask = _pad_context(context, context_mask, length)
            uncond_context, uncond_mask = _pad_context(uncond_context, uncond_mask, length)
        both_ctx = torch.cat([context, uncond_context])
        both_cmask = None if context_mask is None else torch.cat([context_mask, uncond_mask])
        both_xmask = None if x_mask is None else torch.cat([x_mask, x_mask])
    groups = _row_groups(scheduler, noise.shape[0])
    sigmas = torch.empty(noise.shape[0], len(groups[0][0].timesteps) + 1, device=noise.device)
    for sched, rows in groups:
        sched._step_index = None  # restart the diffusers scheduler at its first sigma
        sigmas[rows] = sched.sigmas.to(noise.device, sigmas.dtype)
    keep = None if known_mask is None else known_mask[..., None]
    for i in range(sigmas.shape[1] - 1):
        sigma = sigmas[:, i, None, None].to(noise.dtype)
        if keep is not None:
            x = paste_known(x, known, noise, keep, sigma)
        t = sigmas[:, i].to(x.dtype)
        if do_cfg:
            v_c, v_u = model(
                torch.cat([x, x]), torch.cat([t, t]), both_ctx, both_xmask, both_cmask
            ).chunk(2)
            v = v_u + guidance_scale * (v_c - v_u)
        else:
            v = model(x, t, context, x_mask, context_mask)
        x = x.clone()
        for sched, rows in groups:
            step = sched.step(v[rows], sched.timesteps[i], x[rows], return_dict=False)[0]
            x[rows] = step.to(noise.dtype)
    if keep is not None:
        x = torch.where(keep, known, x)
    if x_mask is not None:
        x = x * x_mask[..., None].to(x.dtype)
    return x


def paste_known(x: Tensor, known: Tensor, noise: Tensor, keep: Tensor, sigma: Tensor) -> Tensor:
    """Inpainting by replacement: where `keep` is True, the state becomes the known latents
    noised to `sigma` along the same noise, x_sigma = (1 - sigma) * known + sigma * noise."""
    return torch.where(keep, (1 - sigma) * known + sigma * noise, x)


def _row_groups(scheduler, batch: int) -> list[tuple[object, list[int]]]:
    """[(scheduler, its rows)] from one scheduler or a list of one per row (shared ones once)."""
    if not isinstance(scheduler, (list, tuple)):
        return [(scheduler, list(range(batch)))]
    if len(scheduler) != batch:
        raise GenerationError(
            f"{len(scheduler)} schedulers for a batch of {batch}; give one per row"
        )
    groups: dict[int, tuple[object, list[int]]] = {}
    for row, sched in enumerate(scheduler):
        groups.setdefault(id(sched), (sched, []))[1].append(row)
    steps = {len(sched.timesteps) for sched, _ in groups.values()}
    if len(steps) != 1:
        raise GenerationError(f"per-row schedulers have different step counts {sorted(steps)}")
    return list(groups.values())


def _pad_context(context: Tensor, mask: Tensor | None, length: int) -> tuple[Tensor, Tensor]:
    b, n, c = context.shape
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=context.device)
    pad = length - n
    context = torch.cat([context, context.new_zeros(b, pad, c)], dim=1)
    return context, torch.cat([mask, mask.new_zeros(b, pad)], dim=1)
