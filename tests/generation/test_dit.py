from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sonotok.core.errors import CheckpointError, ModelNotFoundError
from sonotok.generation.dit import DiT, DiTConfig, apply_rope, rope_angles
from sonotok.generation.errors import GenerationError


def tiny(**kw) -> DiT:
    torch.manual_seed(0)
    model = DiT(DiTConfig(**{**DiTConfig.tiny(latent_dim=8, context_dim=12).__dict__, **kw}))
    # Non-zero adaLN / output weights so every path carries signal (zero-init hides bugs).
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model.eval()


def inputs(b=2, t=10, length=5):
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(b, t, 8, generator=g),
        torch.rand(b, generator=g),
        torch.randn(b, length, 12, generator=g),
    )


def test_zero_init_model_outputs_zero():
    model = DiT(DiTConfig.tiny(latent_dim=8, context_dim=12))
    x, t, ctx = inputs()
    assert model(x, t, ctx).abs().max() == 0


@pytest.mark.parametrize("adaln", ["full", "shared_lowrank"])
def test_padded_frames_do_not_change_valid_outputs(adaln):
    model = tiny(adaln=adaln)
    x, t, ctx = inputs()
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 6:] = False
    out = model(x, t, ctx, mask)
    x2 = x.clone()
    x2[0, 6:] = 100 * torch.randn(4, 8)
    out2 = model(x2, t, ctx, mask)
    torch.testing.assert_close(out, out2, rtol=0, atol=1e-5)
    assert out[0, 6:].abs().max() == 0
    alone = model(x[:1, :6], t[:1], ctx[:1])
    torch.testing.assert_close(out[0, :6], alone[0], rtol=1e-5, atol=1e-5)
    assert out[0, :6].abs().mean() > 1e-3


def test_context_padding_is_ignored():
    model = tiny()
    x, t, ctx = inputs()
    cmask = torch.ones(2, 5, dtype=torch.bool)
    cmask[1, 3:] = False
    out = model(x, t, ctx, None, cmask)
    ctx2 = ctx.clone()
    ctx2[1, 3:] = 50.0
    torch.testing.assert_close(out, model(x, t, ctx2, None, cmask), rtol=0, atol=1e-5)
    short = model(x[1:], t[1:], ctx[1:, :3])
    torch.testing.assert_close(out[1], short[0], rtol=1e-5, atol=1e-5)
    assert (out[1] - model(x, t, ctx2)[1]).abs().max() > 1e-3  # unmasked, the padding matters


def test_output_depends_on_time_and_text():
    model = tiny()
    x, t, ctx = inputs()
    out = model(x, t, ctx)
    assert (out - model(x, t + 0.3, ctx)).abs().max() > 1e-3
    assert (out - model(x, t, torch.zeros_like(ctx))).abs().max() > 1e-3


def test_rope_scores_depend_on_relative_position_only():
    cos, sin = rope_angles(20, 8, 10000.0, torch.device("cpu"))
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    qs, ks = (
        apply_rope(q.expand(1, 1, 20, 8), cos, sin),
        apply_rope(k.expand(1, 1, 20, 8), cos, sin),
    )
    scores = qs[0, 0] @ ks[0, 0].T
    torch.testing.assert_close(scores[3, 1], scores[15, 13])
    torch.testing.assert_close(scores[7, 9], scores[10, 12])
    torch.testing.assert_close(apply_rope(q, cos[:1], sin[:1]), q)  # position 0 is unrotated


def test_gradient_checkpointing_gives_same_gradients():
    model = tiny().train()
    x, t, ctx = inputs()
    model(x, t, ctx).square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.enable_gradient_checkpointing()
    model(x, t, ctx).square().sum().backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)


def test_long_skips_pair_first_and_last_blocks():
    model = tiny(depth=5)
    assert [b.skip is not None for b in model.blocks] == [False, False, False, True, True]
    assert model.num_skips == 2


def test_save_and_load_roundtrip(tmp_path):
    model = tiny(qk_norm="rmsnorm", mlp_type="gelu")
    model.save_pretrained(tmp_path / "dit")
    loaded = DiT.from_pretrained(tmp_path / "dit")
    assert loaded.config == model.config
    x, t, ctx = inputs()
    torch.testing.assert_close(loaded(x, t, ctx), model(x, t, ctx), rtol=0, atol=0)


def test_load_rejects_mismatched_weights(tmp_path):
    tiny().save_pretrained(tmp_path / "dit")
    text = (tmp_path / "dit" / "config.json").read_text().replace('"depth": 3', '"depth": 4')
    (tmp_path / "dit" / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match="missing keys .'blocks.3.ada_down.weight'"):
        DiT.from_pretrained(tmp_path / "dit")


def test_missing_folder_and_offline_hub_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="nope'?: no such file or folder"):
        DiT.from_pretrained(tmp_path / "nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="no-such-model'?: not a local folder, and not"):
        DiT.from_pretrained("sonotok-test/no-such-model")


def test_bad_config_values_are_rejected():
    with pytest.raises(GenerationError, match="divisible"):
        DiTConfig(hidden_size=30, num_heads=4)
    with pytest.raises(GenerationError, match="adaln"):
        DiTConfig(adaln="film")
    with pytest.raises(GenerationError, match="unknown"):
        DiTConfig.from_dict({"width": 3})
    model = tiny()
    x, t, ctx = inputs()
    with pytest.raises(GenerationError, match="channels"):
        model(x, t, ctx[..., :5])


def test_paper_preset_size():
    from sonotok.generation.config import load_config

    cfg = load_config(Path(__file__).parents[2] / "configs" / "generation" / "paper.yaml")
    assert (cfg.model.hidden_size, cfg.model.depth, cfg.model.latent_dim) == (1536, 11, 1280)
    with torch.device("meta"):
        model = DiT(cfg.model)
    assert 700e6 < model.num_parameters() < 760e6  # paper: ~750M
