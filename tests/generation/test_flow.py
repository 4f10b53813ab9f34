from __future__ import annotations

import math

import pytest
import torch

from sonotok.generation.dit import DiT, DiTConfig
from sonotok.generation.flow import (
    FlowMatchingObjective,
    make_scheduler,
    rae_shift_alpha,
    sample,
    sample_logit_normal,
    set_sigmas,
    shift_timesteps,
    sway_sigmas,
)


def test_rae_shift_matches_definition():
    # 10 s of DashengTokenizer latents: m = 250 * 1280, alpha = sqrt(m / 4096)
    assert rae_shift_alpha(250, 1280) == pytest.approx(math.sqrt(250 * 1280 / 4096))
    assert rae_shift_alpha(250, 1280) == pytest.approx(8.8388, abs=1e-4)
    t = torch.linspace(0, 1, 11)
    alpha = 3.0
    torch.testing.assert_close(shift_timesteps(t, alpha), alpha * t / (1 + (alpha - 1) * t))
    torch.testing.assert_close(shift_timesteps(t, 1.0), t)
    assert shift_timesteps(torch.tensor(0.5), 3.0) == pytest.approx(0.75)
    frames = torch.tensor([64.0, 256.0])
    torch.testing.assert_close(rae_shift_alpha(frames, 16), torch.tensor([0.5, 1.0]))


def test_sway_sigmas_match_formula():
    n, s = 25, -1.0
    t = [i / n for i in range(n + 1)]
    expected = [1 - (ti + s * (math.cos(math.pi * ti / 2) - 1 + ti)) for ti in t]
    got = sway_sigmas(n, s)
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    assert got[0] == 1 and abs(got[-1]) < 1e-6
    assert (got[1:] < got[:-1]).all()
    # s = -1 simplifies to sigma = cos(pi t / 2): more steps spent near the noise end
    assert got.tolist() == pytest.approx([math.cos(math.pi * ti / 2) for ti in t], abs=1e-6)
    torch.testing.assert_close(sway_sigmas(4, None), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))


def test_scheduler_gets_shifted_sway_sigmas():
    scheduler = make_scheduler()
    sigmas = set_sigmas(scheduler, 10, -1.0, 2.0)
    base = sway_sigmas(10, -1.0)
    torch.testing.assert_close(sigmas[:-1], 2 * base[:-1] / (1 + base[:-1]))
    assert sigmas[-1] == 0 and len(scheduler.timesteps) == 10
    torch.testing.assert_close(scheduler.timesteps, 1000 * sigmas[:-1])


def test_logit_normal_timesteps():
    t = sample_logit_normal(20000, 0.0, 1.0, torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1
    assert t.median() == pytest.approx(0.5, abs=0.02)
    logit = torch.log(t / (1 - t))
    assert logit.std() == pytest.approx(1.0, abs=0.03)


def test_training_timesteps_are_shifted_per_example():
    objective = FlowMatchingObjective(shift_base_dim=4096)
    frames = torch.tensor([4096.0, 256.0])  # alpha 4 and 1 for 16 channels
    t = objective.sample_t(frames, 16, torch.Generator().manual_seed(3))
    raw = sample_logit_normal(2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(t, torch.stack([shift_timesteps(raw[0], 4.0), raw[1]]))


def test_loss_is_zero_for_the_exact_velocity_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 7, 4, generator=g)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    x0 = x0 * mask[..., None]

    def oracle(x_t, t, context, x_mask, context_mask):
        return (x_t - x0) / t[:, None, None]  # = eps - x0 on x_t = (1-t) x0 + t eps

    objective = FlowMatchingObjective(cond_dropout=0.0)
    loss = objective.loss(
        oracle, x0, torch.zeros(3, 1, 2), mask, None, torch.Generator().manual_seed(1)
    )
    assert loss < 1e-8

    def wrong_at_padding(x_t, t, context, x_mask, context_mask):
        return oracle(x_t, t, context, x_mask, context_mask) + 5.0 * (~x_mask)[..., None]

    loss = objective.loss(
        wrong_at_padding, x0, torch.zeros(3, 1, 2), mask, None, torch.Generator().manual_seed(1)
    )
    assert loss < 1e-8

    def constant(x_t, t, context, x_mask, context_mask):
        return oracle(x_t, t, context, x_mask, context_mask) + 2.0

    loss = objective.loss(
        constant, x0, torch.zeros(3, 1, 2), mask, None, torch.Generator().manual_seed(1)
    )
    assert loss.item() == pytest.approx(4.0, rel=1e-5)  # mean of 2^2 over valid entries


def test_condition_dropout_zeroes_text():
    seen = []

    def model(x_t, t, context, x_mask, context_mask):
        seen.append(context.clone())
        return torch.zeros_like(x_t)

    x0, mask, ctx = torch.randn(64, 3, 2), torch.ones(64, 3, dtype=torch.bool), torch.ones(64, 2, 5)
    FlowMatchingObjective(cond_dropout=0.0).loss(model, x0, ctx, mask)
    assert seen[-1].eq(1).all()
    FlowMatchingObjective(cond_dropout=1.0).loss(model, x0, ctx, mask)
    assert seen[-1].eq(0).all()
    FlowMatchingObjective(cond_dropout=0.5).loss(
        model, x0, ctx, mask, generator=torch.Generator().manual_seed(0)
    )
    dropped = seen[-1].sum((1, 2)) == 0
    assert 10 < int(dropped.sum()) < 54 and (seen[-1][~dropped] == 1).all()


@pytest.mark.parametrize("sway", [None, -1.0])
def test_euler_with_exact_velocity_transports_noise_to_target(sway):
    target = torch.tensor([1.0, -2.0, 3.0])

    def velocity(x, t, context, x_mask, context_mask):
        return (x - target) / t[:, None, None]

    scheduler = make_scheduler()
    set_sigmas(scheduler, 8, sway, 3.0)
    noise = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(0))
    out = sample(velocity, scheduler, noise, torch.zeros(5, 1, 2))
    torch.testing.assert_close(out, target.expand(5, 4, 3), rtol=0, atol=1e-5)


def test_euler_with_constant_velocity_moves_by_its_integral():
    scheduler = make_scheduler()
    set_sigmas(scheduler, 7, -1.0, 1.0)
    v = torch.tensor([0.5, -1.0])
    out = sample(
        lambda x, t, c, m, cm: v.expand_as(x), scheduler, torch.zeros(1, 1, 2), torch.zeros(1, 1, 1)
    )
    torch.testing.assert_close(out[0, 0], -v)  # x(0) = x(1) - integral_0^1 v


def _tiny_model():
    torch.manual_seed(0)
    model = DiT(DiTConfig.tiny(latent_dim=4, context_dim=6))
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model.eval()


def test_guidance_one_equals_conditional_sampling_and_cfg_formula():
    model = _tiny_model()
    g = torch.Generator().manual_seed(0)
    noise, ctx = torch.randn(2, 5, 4, generator=g), torch.randn(2, 3, 6, generator=g)
    scheduler = make_scheduler()
    set_sigmas(scheduler, 1, None, 1.0)  # one step: x1 = noise - v(noise, 1)
    t1 = torch.ones(2)
    cond = noise - model(noise, t1, ctx)
    torch.testing.assert_close(sample(model, scheduler, noise, ctx, guidance_scale=1.0), cond)
    uncond = noise - model(noise, t1, torch.zeros_like(ctx))
    guided = sample(model, scheduler, noise, ctx, guidance_scale=3.0)
    torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond), rtol=1e-5, atol=1e-5)
    neg = torch.randn(2, 2, 6, generator=g)  # negative prompt of another length
    neg_out = sample(model, scheduler, noise, ctx, uncond_context=neg, guidance_scale=3.0)
    v_neg = model(noise, t1, neg)
    expected = noise - (v_neg + 3.0 * (model(noise, t1, ctx) - v_neg))
    torch.testing.assert_close(neg_out, expected, rtol=1e-5, atol=1e-5)


def test_inpainting_keeps_known_frames_exactly():
    model = _tiny_model()
    g = torch.Generator().manual_seed(0)
    known = torch.randn(2, 10, 4, generator=g)
    keep = torch.zeros(2, 10, dtype=torch.bool)
    keep[:, :4] = True  # continuation: first 4 frames given
    keep[1, 8:] = True  # and an inpainting gap for the second
    scheduler = make_scheduler()
    set_sigmas(scheduler, 6, -1.0, 1.0)
    noise = torch.randn(2, 10, 4, generator=g)
    out = sample(
        model,
        scheduler,
        noise,
        torch.randn(2, 3, 6, generator=g),
        guidance_scale=2.0,
        known=known,
        known_mask=keep,
    )
    assert torch.equal(out[keep], known[keep])
    assert (out[~keep] - known[~keep]).abs().min() > 0


def test_per_row_schedulers_equal_separate_runs_with_each_shift():
    """Each row keeps the sigmas of its own RAE shift, whatever it is batched with."""
    model = _tiny_model()
    g = torch.Generator().manual_seed(0)
    noise, ctx = torch.randn(3, 6, 4, generator=g), torch.randn(3, 3, 6, generator=g)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    schedulers = [make_scheduler(), make_scheduler()]
    set_sigmas(schedulers[0], 5, -1.0, 2.0)
    set_sigmas(schedulers[1], 5, -1.0, 1.0)
    rows = [schedulers[0], schedulers[1], schedulers[0]]
    together = sample(model, rows, noise, ctx, mask, guidance_scale=2.0)
    for i, sched in enumerate(rows):
        one = slice(i, i + 1)
        alone = sample(model, sched, noise[one], ctx[one], mask[one], guidance_scale=2.0)
        torch.testing.assert_close(together[one], alone, rtol=0, atol=1e-5)
    other = sample(model, schedulers[1], noise[:1], ctx[:1], mask[:1], guidance_scale=2.0)
    assert (together[0] - other[0]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="one per row"):
        sample(model, schedulers, noise, ctx)
