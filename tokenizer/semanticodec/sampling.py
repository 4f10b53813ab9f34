"""Samplers for SemantiCodec's latent diffusion: the reference DDIM, and diffusers' DPM-Solver++.

`ddim` reproduces the official `DDIMSampler` step for step: "uniform" discretisation
(every `1000 // steps`-th timestep, +1 — so a step count that does not divide 1000 runs
`ceil(1000 / (1000 // steps))` steps, as the reference does), the previous alpha of the last
step is `alphas_cumprod[0]`, v-prediction, eta (1.0 in the release: stochastic). diffusers'
`DDIMScheduler` spaces non-dividing step counts differently, hence this small loop.
`dpm++` is diffusers' `DPMSolverMultistepScheduler` (second order, deterministic): the fast
option, 10–20 steps.

Noise: `noise` (B, S + 1, C, H, W) holds x_T at [:, 0] and step i's noise at [:, 1 + i]; when
absent it is drawn from `generator` in that order, so a fixed generator gives fixed audio.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sonotok.core.errors import ConfigError, MissingDependencyError

__all__ = ["SAMPLERS", "ddim_timesteps", "draw_noise", "linear_alphas_cumprod", "sample"]

SAMPLERS = ("ddim", "dpm++")

#: v-prediction network: (x_t (B,C,H,W), t (B,) long) → v (B,C,H,W), guidance already applied.
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def linear_alphas_cumprod(timesteps: int, start: float, end: float) -> np.ndarray:
    """ᾱ_t of the "linear" schedule (betas = linspace(√start, √end)²), in float64 as ddpm.py."""
    betas = np.linspace(start**0.5, end**0.5, timesteps, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def ddim_timesteps(steps: int, timesteps: int = 1000) -> np.ndarray:
    """The reference's uniform DDIM timesteps (ascending): range(0, T, T // steps) + 1."""
    if not 1 <= steps <= timesteps // 2:
        raise ConfigError(f"steps={steps}: use 1 to {timesteps // 2} diffusion steps")
    return np.arange(0, timesteps, timesteps // steps) + 1


def num_noise_draws(sampler: str, steps: int, timesteps: int = 1000) -> int:
    """How many (B, C, H, W) noise tensors `sample` consumes: x_T plus one per DDIM step."""
    _check_sampler(sampler)
    return 1 + (len(ddim_timesteps(steps, timesteps)) if sampler == "ddim" else 0)


def draw_noise(
    shape: tuple[int, ...], draws: int, generator: torch.Generator | None, device=None
) -> torch.Tensor:
    """(B, draws, C, H, W) standard normal noise, drawn as draws × (B, C, H, W) in order."""
    out = [torch.randn(shape, generator=generator, device=device) for _ in range(draws)]
    return torch.stack(out, dim=1)


def _check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler={sampler!r}: choose one of {', '.join(SAMPLERS)}")


def sample(
    denoise: Denoiser,
    noise: torch.Tensor,
    alphas_cumprod: np.ndarray,
    steps: int,
    sampler: str = "ddim",
    eta: float = 1.0,
) -> torch.Tensor:
    """Run `sampler` from x_T = noise[:, 0] → x_0 (B, C, H, W)."""
    _check_sampler(sampler)
    if sampler == "ddim":
        return _ddim(denoise, noise, alphas_cumprod, steps, eta)
    return _dpm_solver(denoise, noise[:, 0], alphas_cumprod, steps)


def _ddim(
    denoise: Denoiser, noise: torch.Tensor, ac64: np.ndarray, steps: int, eta: float
) -> torch.Tensor:
    ts = ddim_timesteps(steps, len(ac64))
    if noise.shape[1] < 1 + (len(ts) if eta > 0 else 0):
        raise ConfigError(
            f"noise has {noise.shape[1]} draws; ddim with {steps} steps needs {1 + len(ts)}"
        )
    ac32 = ac64.astype(np.float32).astype(np.float64)  # the sampler reads the float32 buffer
    a_t = ac32[ts]
    a_prev = np.concatenate([ac32[:1], ac32[ts[:-1]]])
    sigmas = eta * np.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
    x = noise[:, 0]
    batch = x.shape[0]
    for i, index in enumerate(reversed(range(len(ts)))):
        t = int(ts[index])
        v = denoise(x, torch.full((batch,), t, device=x.device, dtype=torch.long))
        sqrt_a, sqrt_1ma = _f32(np.sqrt(ac64[t])), _f32(np.sqrt(1.0 - ac64[t]))
        e_t = sqrt_a * v + sqrt_1ma * x
        pred_x0 = sqrt_a * x - sqrt_1ma * v
        sigma = _f32(sigmas[index])
        dir_xt = _f32(np.sqrt(1.0 - a_prev[index] - sigmas[index] ** 2)) * e_t
        x = _f32(np.sqrt(a_prev[index])) * pred_x0 + dir_xt
        if sigma > 0:
            x = x + sigma * noise[:, 1 + i]
    return x


def _f32(value: float) -> float:
    """A schedule constant rounded to float32, as the reference's buffers hold it."""
    return float(np.float32(value))


def _dpm_solver(denoise: Denoiser, x: torch.Tensor, ac64: np.ndarray, steps: int) -> torch.Tensor:
    try:
        from diffusers import DPMSolverMultistepScheduler
    except ImportError as err:
        raise MissingDependencyError(
            "sampler='dpm++' needs diffusers: pip install 'sonotok[generation]'"
        ) from err
    alphas = ac64 / np.concatenate([[1.0], ac64[:-1]])
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=len(ac64),
        trained_betas=(1.0 - alphas).tolist(),
        prediction_type="v_prediction",
        algorithm_type="dpmsolver++",
        solver_order=2,
    )
    scheduler.set_timesteps(steps, device=x.device)
    for t in scheduler.timesteps:
        v = denoise(x, torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long))
        x = scheduler.step(v, t, x).prev_sample
    return x
