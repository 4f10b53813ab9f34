import numpy as np
import pytest
import torch

from sonotok.tokenizer import AudioInputError


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_rate_channels_and_length_are_preserved(tiny_pipeline, tone, rate, channels):
    n = int(1.37 * rate) + 3  # not a whole number of frames at any rate
    x = np.stack([tone(n, rate, seed=c) for c in range(channels)], axis=1)
    x = x if channels == 2 else x[:, 0]
    y = tiny_pipeline.enhance(x, rate)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    # The output is the model's 16 kHz result resampled back: compare with doing that by hand.
    from sonotok.core.audio import resample

    ref = tiny_pipeline.enhance_16k(
        torch.from_numpy(resample(x.T if channels == 2 else x[None], rate, 16000))
    )
    back = resample(ref.numpy(), 16000, rate)
    m = min(back.shape[-1], n)
    got = y.T if channels == 2 else y[None]
    assert np.allclose(got[:, :m], back[:, :m], atol=1e-5)
    assert np.abs(y).max() > 1e-3


def test_channels_are_enhanced_independently(tiny_pipeline, tone):
    a, b = tone(24000, 16000, seed=1), tone(24000, 16000, seed=2)
    stereo = tiny_pipeline.enhance(np.stack([a, b], axis=1), 16000)
    assert np.allclose(stereo[:, 0], tiny_pipeline.enhance(a, 16000), atol=1e-5)
    assert np.allclose(stereo[:, 1], tiny_pipeline.enhance(b, 16000), atol=1e-5)


def test_strength_mixes_dry_and_wet(tiny_pipeline, tone):
    x = tone(20000, 16000, seed=3)
    wet = tiny_pipeline.enhance(x, 16000, strength=1.0)
    assert np.array_equal(tiny_pipeline.enhance(x, 16000, strength=0.0), x)
    assert np.allclose(
        tiny_pipeline.enhance(x, 16000, strength=0.25), 0.25 * wet + 0.75 * x, atol=1e-6
    )
    with pytest.raises(ValueError, match="strength"):
        tiny_pipeline.enhance(x, 16000, strength=1.5)


def test_tensor_in_tensor_out(tiny_pipeline, tone):
    x = torch.from_numpy(tone(16000, 16000))
    y = tiny_pipeline.enhance(x, 16000)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape


@pytest.mark.parametrize(
    "audio, match",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.full(8000, np.nan, np.float32), "NaN"),
        (np.zeros(100, np.float32), "too short"),
        (np.zeros((2, 3, 100), np.float32), "shape"),
    ],
)
def test_bad_inputs_raise_clear_errors(tiny_pipeline, audio, match):
    with pytest.raises(AudioInputError, match=match):
        tiny_pipeline.enhance(audio, 16000)


def test_bad_files_name_the_file(tiny_pipeline, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioInputError, match="broken.wav"):
        tiny_pipeline.enhance_file(bad, tmp_path / "out.wav")
    import soundfile as sf

    sf.write(tmp_path / "short.wav", np.zeros(50, np.float32), 16000)
    with pytest.raises(AudioInputError, match="short.wav.*too short"):
        tiny_pipeline.enhance_file(tmp_path / "short.wav", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_a_tokenizer_writing_at_another_rate_keeps_rate_and_length(tone):
    """The toy `toy-upsampled` tokenizer reads 8 kHz and writes 16 kHz: the enhanced audio is
    resampled from its output rate, so with an identity denoiser (residual, zero-initialised)
    the input comes back at its own rate and length."""
    import importlib.util
    from pathlib import Path

    from sonotok.enhancement import (
        DenoiserConfig,
        EnhancementPipeline,
        LatentDenoiser,
        TokenizerDenoiser,
    )

    spec = importlib.util.spec_from_file_location(
        "sonotok_test_toy_enhance", Path(__file__).parents[1] / "tokenizer" / "toy.py"
    )
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    tokenizer = toy.UpsampledTokenizer()
    denoiser = LatentDenoiser(DenoiserConfig.tiny(tokenizer.latent_dim)).eval()
    pipe = EnhancementPipeline(TokenizerDenoiser(tokenizer, denoiser), chunk_seconds=None)
    x = (0.4 * np.sin(2 * np.pi * 300 * np.arange(11025) / 22050)).astype(np.float32)
    y = pipe.enhance(x, 22050)
    assert y.shape == x.shape and np.abs(y[500:10000] - x[500:10000]).max() < 1e-2
