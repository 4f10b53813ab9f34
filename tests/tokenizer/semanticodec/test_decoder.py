"""SemantiCodec decoder: official checkpoint loading, windowing, batching, samplers, errors."""

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from sonotok.core.errors import CheckpointError, ConfigError  # noqa: E402
from sonotok.tokenizer.semanticodec.decoder import (  # noqa: E402
    SemantiCodecDecoder,
    load_official_decoder,
)
from sonotok.tokenizer.semanticodec.decoder_config import DecoderConfig  # noqa: E402
from sonotok.tokenizer.semanticodec.sampling import ddim_timesteps  # noqa: E402
from sonotok.tokenizer.semanticodec.windows import (  # noqa: E402
    decode_features,
    overlap_add,
    split_windows,
    window_tokens,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def official():
    spec = importlib.util.spec_from_file_location(
        "maker", FIXTURES / "make_semanticodec_decoder_parity.py"
    )
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    meta = json.loads((FIXTURES / "semanticodec_parity" / "decoder_meta.json").read_text())
    return maker.seeded_official_state(meta["official_shapes"])


@pytest.fixture(scope="module")
def decoder(official, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "decoder.ckpt"
    torch.save(official, path)
    model = SemantiCodecDecoder(DecoderConfig.tiny()).eval()
    load_official_decoder(path, model)
    return model


def _save(state, tmp_path):
    path = tmp_path / "decoder.ckpt"
    torch.save(state, path)
    return path


def test_release_extras_are_accepted_and_schedule_checked(official, decoder, tmp_path):
    betas = np.linspace(0.0015**0.5, 0.0195**0.5, 1000) ** 2
    state = {
        **official,
        "model_ema.decay": torch.tensor(0.999),
        "logvar": torch.zeros(1000),
        "betas": torch.tensor(betas, dtype=torch.float32),
    }
    model = decoder  # reloading its own weights: idempotent
    load_official_decoder(_save({"state_dict": state}, tmp_path), model)
    assert float(model.scale_factor) == pytest.approx(0.75)
    state["betas"] = state["betas"] * 1.1
    with pytest.raises(CheckpointError, match="noise schedule"):
        load_official_decoder(_save(state, tmp_path), decoder)


def test_missing_and_unexpected_keys_are_named(official, decoder, tmp_path):
    state = dict(official)
    del state["first_stage_model.vocoder.conv_post.weight"]
    state["model.diffusion_model.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_official_decoder(_save(state, tmp_path), decoder)
    assert "vocoder.conv_post.weight" in str(err.value)
    assert "model.diffusion_model.extra.weight" in str(err.value)


def test_wrong_token_rate_width_is_refused(official, tmp_path):
    with pytest.raises(CheckpointError, match="shapes differ"):
        load_official_decoder(
            _save(official, tmp_path), SemantiCodecDecoder(DecoderConfig.tiny(feature_dim=32))
        )


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "decoder.ckpt"
    torch.save({"x": torch.zeros(1), "obj": Path("evil")}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_official_decoder(path)
    with pytest.raises(CheckpointError, match="no such"):
        load_official_decoder(tmp_path / "absent.ckpt")


def test_split_windows_follows_the_reference():
    assert window_tokens(100) == 512 and window_tokens(50) == 256 and window_tokens(25) == 128
    assert split_windows(512, 512) == [(0, 512)]
    assert split_windows(1100, 512) == [(0, 512), (480, 992), (960, 1100)]
    assert split_windows(513, 512) == [(0, 512), (480, 513)]
    with pytest.raises(ConfigError):
        window_tokens(75)


def test_overlap_add_cross_fades_linearly():
    windows = torch.ones(1, 2, 10)
    out = overlap_add(windows, 4)
    assert out.shape == (1, 16)
    torch.testing.assert_close(out, torch.ones(1, 16))  # fade-in + fade-out sum to one
    windows[:, 1] = 0
    torch.testing.assert_close(overlap_add(windows, 4)[0, 6:10], torch.tensor([1, 2 / 3, 1 / 3, 0]))


def test_ddim_timesteps_follow_uniform_discretisation():
    assert ddim_timesteps(50).tolist() == list(range(1, 1000, 20))
    assert len(ddim_timesteps(30)) == 31  # 1000 // 30 = 33 → 31 steps, as the reference
    with pytest.raises(ConfigError):
        ddim_timesteps(501)


def test_batched_decode_equals_one_by_one(decoder):
    features = torch.randn(2, 600, 16, generator=torch.Generator().manual_seed(3))

    def run(x, per_pass):
        return decode_features(
            decoder,
            x,
            100,
            steps=2,
            guidance=2.0,
            windows_per_pass=per_pass,
            generator=torch.Generator().manual_seed(9),
        )

    both = run(features, 4)
    assert both.shape == (2, 600 * 320)
    torch.testing.assert_close(run(features[1:], 1), both[1:], atol=1e-5, rtol=0)
    assert not torch.allclose(both[0], both[1])


def test_token_rate_sets_window_and_exact_length(decoder):
    features = torch.randn(1, 300, 16, generator=torch.Generator().manual_seed(6))
    audio = decode_features(decoder, features, 50, steps=1, sampler="dpm++")
    assert audio.shape == (1, 300 * 640)  # 50 tokens/s: 256-token windows, 640 samples a token
    assert torch.isfinite(audio).all() and audio.abs().max() > 0


def test_dpm_solver_and_deterministic_ddim(decoder):
    features = torch.randn(1, 512, 16, generator=torch.Generator().manual_seed(4))
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    fast = decoder.generate(features, steps=4, sampler="dpm++", generator=gen())
    assert fast.shape == (1, decoder.config.window_samples) and torch.isfinite(fast).all()
    a = decoder.generate(features, steps=4, eta=0.0, generator=gen())
    b = decoder.generate(features, steps=4, eta=1.0, generator=gen())
    assert not torch.allclose(a, b)  # eta adds step noise


def test_low_precision_weights_keep_float32_sampling(decoder):
    half = copy.deepcopy(decoder).to(torch.bfloat16)
    features = torch.randn(1, 64, 16, generator=torch.Generator().manual_seed(8))
    gen = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    low = half.generate(features, steps=1, generator=gen())
    full = decoder.generate(features, steps=1, generator=gen())
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    assert (low - full).abs().max() < 0.1 * full.abs().max()


def test_bad_inputs_raise_config_errors(decoder):
    with pytest.raises(ConfigError, match="width"):
        decoder.generate(torch.zeros(1, 8, 15), steps=2)
    with pytest.raises(ConfigError, match="sampler"):
        decoder.generate(torch.zeros(1, 8, 16), steps=2, sampler="euler")
    with pytest.raises(ConfigError, match="T > 0"):
        decode_features(decoder, torch.zeros(1, 0, 16), 100)


def test_official_config_geometry():
    cfg = DecoderConfig.for_token_rate(25)
    assert cfg.context_dim == 6336 and DecoderConfig().context_dim == 1728
    assert cfg.mel_frames == 1024 and cfg.hop_length == 160
    assert cfg.window_samples == 163872  # HiFi-GAN's transposed convolutions add 32 samples
    with pytest.raises(ConfigError):
        DecoderConfig(model_channels=48)
