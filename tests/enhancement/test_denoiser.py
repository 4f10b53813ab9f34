import pytest
import torch

from sonotok.enhancement import DenoiserConfig, EnhancementPipeline, LatentDenoiser, latent_loss
from sonotok.tokenizer import CheckpointError, ConfigError


def test_residual_denoiser_starts_as_identity():
    model = LatentDenoiser(DenoiserConfig.tiny(32))
    z = torch.randn(2, 30, 32)
    assert torch.equal(model(z), z)


def test_padded_batch_equals_each_clip_alone():
    torch.manual_seed(0)
    model = LatentDenoiser(DenoiserConfig(latent_dim=16, dim=24, num_layers=2, num_heads=3)).eval()
    a, b = torch.randn(40, 16), torch.randn(25, 16)
    batch = torch.stack([a, torch.nn.functional.pad(b, (0, 0, 0, 15))])
    mask = torch.arange(40)[None] < torch.tensor([40, 25])[:, None]
    out = model(batch, mask)
    assert torch.allclose(out[0], model(a[None])[0], atol=1e-5)
    assert torch.allclose(out[1, :25], model(b[None])[0], atol=1e-5)
    assert torch.equal(out[1, 25:], torch.zeros(15, 16))


def test_attention_window_bounds_the_receptive_field():
    torch.manual_seed(0)
    cfg = DenoiserConfig(latent_dim=8, dim=8, num_layers=3, num_heads=2, attention_window=4)
    model = LatentDenoiser(cfg).eval()
    assert cfg.receptive_radius == 12
    z = torch.randn(1, 60, 8)
    changed = z.clone()
    changed[0, 40:] = torch.randn(20, 8)  # frames ≥ 40 are more than 12 frames away from frame 27
    out, out2 = model(z), model(changed)
    assert torch.allclose(out[0, :28], out2[0, :28], atol=1e-6)
    assert not torch.allclose(out[0, 28:40], out2[0, 28:40], atol=1e-3)


def test_latent_loss_ignores_padding():
    pred, target = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    pred[0, 3] = 100.0
    mask = torch.tensor([[True, True, True, False]])
    assert latent_loss(pred, target, mask).item() == pytest.approx(1.0)
    assert latent_loss(pred * 0 + 3, target, mask, "l1").item() == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="mse"):
        latent_loss(pred, target, mask, "huber")


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="divisible"):
        DenoiserConfig(dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="unknown config key depth"):
        DenoiserConfig.from_dict({"depth": 3})


def test_save_and_load_round_trip(tiny_pipeline, tiny_pipeline_dir, tiny_denoiser, tone):
    loaded = LatentDenoiser.from_pretrained(tiny_pipeline_dir)
    assert loaded.config == tiny_denoiser.config
    for (k, v), (k2, v2) in zip(loaded.state_dict().items(), tiny_denoiser.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    pipe = EnhancementPipeline.from_pretrained(tiny_pipeline_dir)
    x = tone(16000, 16000, seed=3)
    assert torch.allclose(
        torch.as_tensor(pipe.enhance(x, 16000)),
        torch.as_tensor(tiny_pipeline.enhance(x, 16000)),
        atol=1e-6,
    )


def test_denoiser_and_tokenizer_widths_must_match(tiny_tokenizer, tmp_path):
    from sonotok.enhancement import save_enhancement

    save_enhancement(tmp_path, LatentDenoiser(DenoiserConfig.tiny(48)), tiny_tokenizer)
    with pytest.raises(CheckpointError, match="48-d latents"):
        EnhancementPipeline.from_pretrained(tmp_path)


def test_unknown_folder_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "something-else"}')
    with pytest.raises(CheckpointError, match="neither a sonotok enhancement folder"):
        EnhancementPipeline.from_pretrained(tmp_path)
