from __future__ import annotations

import pytest
import torch

from sonotok.generation.dit import DiT, DiTConfig
from sonotok.generation.errors import GenerationError
from sonotok.generation.flow import FlowMatchingObjective
from sonotok.generation.pipeline import PipelineConfig, TextToAudioPipeline
from sonotok.tokenizer import AudioTokenizer, TokenizerConfig


@pytest.fixture(scope="module")
def tokenizer() -> AudioTokenizer:
    torch.manual_seed(0)
    return AudioTokenizer(TokenizerConfig.tiny()).eval()


def random_dit(latent_dim: int, seed: int = 0) -> DiT:
    torch.manual_seed(seed)
    model = DiT(DiTConfig.tiny(latent_dim=latent_dim, context_dim=384))
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return model.eval()


@pytest.fixture()
def pipe(text_encoder, tokenizer) -> TextToAudioPipeline:
    config = PipelineConfig(latent_mean=0.3, latent_std=2.0)
    return TextToAudioPipeline(
        random_dit(tokenizer.latent_dim), text_encoder, tokenizer=tokenizer, config=config
    )


def test_waveforms_have_the_requested_durations(pipe):
    waves = pipe(["a dog barks", "rain"], seconds=[1.0, 0.5], num_steps=3, seed=0)
    assert [w.shape for w in waves] == [(16000,), (8000,)]
    assert all(torch.isfinite(w).all() and w.abs().max() > 0 for w in waves)


def test_batched_generation_equals_one_by_one(pipe):
    prompts = ["a dog barks", "a long orchestral piece with strings and brass"]
    z, mask = pipe.generate_latents(prompts, seconds=1.0, num_steps=4, seed=5)
    z0, _ = pipe.generate_latents(prompts[:1], seconds=1.0, num_steps=4, seed=5)
    z1, _ = pipe.generate_latents(prompts[1:], seconds=1.0, num_steps=4, seed=6)
    torch.testing.assert_close(z, torch.cat([z0, z1]), rtol=1e-4, atol=1e-4)
    assert mask.all()
    again, _ = pipe.generate_latents(prompts, seconds=1.0, num_steps=4, seed=5)
    assert torch.equal(z, again)


def test_shorter_prompts_are_zero_past_their_length(pipe):
    z, mask = pipe.generate_latents(["a", "b"], seconds=[1.0, 0.4], num_steps=2, seed=0)
    assert mask.sum(1).tolist() == [25, 10]
    assert z[1, 10:].abs().max() == 0 and z[1, :10].abs().min() > 0


def test_guidance_and_negative_prompt_change_the_result(pipe):
    kw = dict(seconds=0.4, num_steps=3, seed=0)
    plain = pipe.generate_latents(["a dog barks"], guidance_scale=1.0, **kw)[0]
    guided = pipe.generate_latents(["a dog barks"], guidance_scale=5.0, **kw)[0]
    negative = pipe.generate_latents(
        ["a dog barks"], guidance_scale=5.0, negative_prompt="music", **kw
    )[0]
    assert (plain - guided).abs().max() > 1e-4 and (guided - negative).abs().max() > 1e-4


def test_inpainting_keeps_the_unmasked_span(pipe):
    known = 0.3 + 2.0 * torch.randn(1, 20, pipe.dit.config.latent_dim)
    keep = torch.ones(1, 20, dtype=torch.bool)
    keep[:, 8:14] = False
    z, _ = pipe.generate_latents(
        ["a door slams"], known=known, known_mask=keep, num_steps=4, seed=0
    )
    torch.testing.assert_close(z[keep], known[keep], rtol=0, atol=1e-5)
    assert (z[~keep] - known[~keep]).abs().mean() > 0.1


def test_inpaint_audio_returns_same_length(pipe, tokenizer):
    audio = 0.1 * torch.randn(1, 16000)
    waves = pipe.inpaint(["a door slams"], audio, start=0.4, end=0.6, num_steps=2, seed=0)
    assert waves[0].shape == (16000,)


def test_save_and_load_pipeline(pipe, tmp_path, text_encoder):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = TextToAudioPipeline.from_pretrained(tmp_path / "pipe", text_encoder=text_encoder)
    assert loaded.config == pipe.config
    a = pipe(["a dog barks"], seconds=0.5, num_steps=3, seed=1)
    b = loaded(["a dog barks"], seconds=0.5, num_steps=3, seed=1)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-6)


def test_errors_without_tokenizer_and_for_bad_inputs(pipe, text_encoder):
    bare = TextToAudioPipeline(pipe.dit, text_encoder)
    z, _ = bare.generate_latents(["x"], seconds=0.2, num_steps=1, seed=0)
    assert z.shape == (1, 5, pipe.dit.config.latent_dim)
    with pytest.raises(GenerationError, match="no tokenizer"):
        bare(["x"], seconds=0.2, num_steps=1)
    with pytest.raises(GenerationError, match="empty prompt"):
        pipe([""], seconds=1)
    with pytest.raises(GenerationError, match="seconds"):
        pipe(["a", "b"], seconds=[1.0])
    with pytest.raises(GenerationError, match="channels"):
        TextToAudioPipeline(random_dit(7), text_encoder, tokenizer=pipe.tokenizer)


def test_tiny_dit_overfits_one_latent_caption_pair(text_encoder):
    """Flow matching on a single (latent, caption): loss goes near 0, samples land on the latent."""
    torch.manual_seed(0)
    model = DiT(
        DiTConfig(
            latent_dim=16,
            hidden_size=64,
            depth=2,
            num_heads=4,
            mlp_ratio=2.0,
            context_dim=384,
            adaln_rank=4,
            adaln_alpha=4.0,
            time_freq_dim=32,
        )
    )
    target = torch.randn(1, 12, 16, generator=torch.Generator().manual_seed(1))
    ctx, cmask = text_encoder(["a dog barks twice"])
    objective = FlowMatchingObjective(density="uniform", shift_base_dim=None, cond_dropout=0.0)
    steps = 700
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(8, 12, dtype=torch.bool)
    losses = []
    for _ in range(steps):
        loss = objective.loss(
            model, target.expand(8, -1, -1), ctx.expand(8, -1, -1), mask, cmask.expand(8, -1), g
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-50:]) / 50
    assert first > 1.5 and last < 0.06 * first
    pipe = TextToAudioPipeline(
        model.eval(), text_encoder, config=PipelineConfig(shift_base_dim=None, sway_coef=None)
    )
    z, _ = pipe.generate_latents(
        ["a dog barks twice"] * 2, seconds=12 / 25, num_steps=25, guidance_scale=1.0, seed=0
    )
    error = (z - target).square().mean() / target.square().mean()
    assert error < 0.02


def test_bf16_autocast_stays_close_to_fp32(pipe):
    z32, _ = pipe.generate_latents(["a dog barks"], seconds=0.4, num_steps=3, seed=0)
    pipe.to("cpu", dtype=torch.bfloat16)
    z16, _ = pipe.generate_latents(["a dog barks"], seconds=0.4, num_steps=3, seed=0)
    assert z16.dtype == torch.float32
    assert (z16 - z32).abs().max() < 0.05 * z32.abs().max()
    assert not torch.equal(z16, z32)


def test_pipeline_can_name_a_shared_tokenizer_instead_of_copying_it(
    pipe, tokenizer, tmp_path, text_encoder
):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    pipe.save_pretrained(tmp_path / "generation", tokenizer_reference="../tokenizer")
    assert not (tmp_path / "generation" / "tokenizer").exists()
    loaded = TextToAudioPipeline.from_pretrained(tmp_path / "generation", text_encoder=text_encoder)
    assert loaded.config.tokenizer == "../tokenizer"
    a = pipe(["rain on a roof"], seconds=0.5, num_steps=3, seed=2)
    b = loaded(["rain on a roof"], seconds=0.5, num_steps=3, seed=2)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-6)


def test_audio_depends_only_on_prompt_seconds_and_seed_not_on_the_batch(pipe):
    """Batch sizes 1, 2 and 3 with mixed durations and prompt lengths give the same clips."""
    prompts = ["a dog barks", "rain falling on a tin roof at night with distant thunder", "wind"]
    seconds, seeds = [1.0, 0.6, 0.84], [11, 12, 13]
    kw = dict(num_steps=3, guidance_scale=3.0)
    alone = [pipe([p], seconds=[s], seed=[k], **kw)[0] for p, s, k in zip(prompts, seconds, seeds)]
    together = pipe(prompts, seconds=seconds, seed=seeds, **kw)
    pairs = pipe(prompts[:2], seconds=seconds[:2], seed=seeds[:2], **kw)
    # the first prompt next to a longer clip and a different neighbour
    mixed = pipe([prompts[0], "a long drone"], seconds=[1.0, 2.0], seed=[11, 99], **kw)
    for i, wave in enumerate(alone):
        assert wave.shape == (round(seconds[i] * 16000),) and wave.abs().max() > 0
        torch.testing.assert_close(together[i], wave, rtol=0, atol=1e-5)
        if i < 2:
            torch.testing.assert_close(pairs[i], wave, rtol=0, atol=1e-5)
    torch.testing.assert_close(mixed[0], alone[0], rtol=0, atol=1e-5)


def test_an_int_seed_gives_prompt_i_seed_plus_i_and_a_list_one_seed_each(pipe):
    kw = dict(seconds=0.4, num_steps=2)
    a, b = pipe.generate_latents(["a", "b"], seed=4, **kw)[0]
    torch.testing.assert_close(
        b[None], pipe.generate_latents(["b"], seed=5, **kw)[0], atol=1e-5, rtol=0
    )
    c, d = pipe.generate_latents(["a", "b"], seed=[5, 4], **kw)[0]
    torch.testing.assert_close(
        c[None], pipe.generate_latents(["a"], seed=5, **kw)[0], atol=1e-5, rtol=0
    )
    assert (a - c).abs().max() > 0.1
    with pytest.raises(GenerationError, match="one integer seed"):
        pipe.generate_latents(["a", "b"], seed=[1], **kw)


def test_inpaint_returns_the_input_outside_the_span(pipe, tokenizer):
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(16000, generator=g)
    out = pipe.inpaint("a door slams", audio, start=0.4, end=0.7, num_steps=3, seed=0)[0]
    s, e, fade = 6400, 11200, 800  # 0.4 s, 0.7 s, 50 ms crossfade inside the span
    assert out.shape == audio.shape
    torch.testing.assert_close(out[:s], audio[:s], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[e:], audio[e:], rtol=0, atol=1e-6)
    middle = slice(s + fade, e - fade)
    assert (out[middle] - audio[middle]).abs().mean() > 0.02  # regenerated
    # the crossfade starts at the input: its first sample is almost all original
    assert (out[s] - audio[s]).abs() < 0.05 * (out[middle] - audio[middle]).abs().max()
    recon = tokenizer.decode(tokenizer.encode(audio))[:16000]
    assert (recon[:s] - audio[:s]).abs().max() > 0.05  # what the old whole-clip output was


def test_inpaint_seed_and_batch_of_prompts(pipe):
    audio = 0.1 * torch.randn(12000, generator=torch.Generator().manual_seed(1))
    kw = dict(start=0.2, end=0.5, num_steps=2)
    both = pipe.inpaint(["a door", "a bell"], audio, seed=[3, 4], **kw)
    torch.testing.assert_close(
        both[1], pipe.inpaint(["a bell"], audio, seed=4, **kw)[0], rtol=0, atol=1e-5
    )
    assert (both[0] - both[1]).abs().max() > 1e-3
    with pytest.raises(GenerationError, match="span"):
        pipe.inpaint(["a"], audio, start=0.5, end=0.2)
    with pytest.raises(GenerationError, match="span"):
        pipe.inpaint(["a"], audio, start=0.1, end=2.0)
    with pytest.raises(GenerationError, match="2 clips for 3 prompts"):
        pipe.inpaint(["a", "b", "c"], torch.stack([audio, audio]), **kw)


def test_continuation_keeps_the_clip_and_appends_new_audio(pipe):
    audio = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(2))
    out = pipe.continuation(["a dog barks"], audio, seconds=0.5, num_steps=2, seed=0)[0]
    assert out.shape == (16000,)
    fade = 800  # the clip's last 50 ms fade into the generated audio
    torch.testing.assert_close(out[: 8000 - fade], audio[: 8000 - fade], rtol=0, atol=1e-6)
    assert (out[8000 - fade : 8000] - audio[-fade:]).abs().max() > 0
    assert out[8000:].abs().mean() > 1e-3
    bare = pipe.continuation(["a dog barks"], audio, seconds=0.5, num_steps=2, seed=0, crossfade=0)
    torch.testing.assert_close(bare[0][:8000], audio, rtol=0, atol=1e-6)
    torch.testing.assert_close(bare[0][8000:], out[8000:], rtol=0, atol=1e-6)
