import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.tokenizer import AudioInputError, load_audio, write_audio
from sonotok.tokenizer.audio import read_clip


def _dominant_hz(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.argmax(spectrum) * sample_rate / len(wave)


@pytest.mark.parametrize(
    "ext,fmt,subtype",
    [
        ("wav", "WAV", "PCM_16"),
        ("flac", "FLAC", "PCM_24"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_reads_every_format_resampled_to_16k(tmp_path, ext, fmt, subtype):
    sr = 44100
    t = np.arange(int(0.5 * sr)) / sr
    x = 0.4 * np.sin(2 * np.pi * 1000 * t)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, x, sr, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert abs(wave.shape[0] - 8000) <= 1200  # mp3 adds encoder delay/padding
    assert abs(_dominant_hz(wave.numpy(), 16000) - 1000) < 5
    assert 0.3 < wave.abs().max() < 0.5


def test_integer_pcm_is_scaled_and_channels_averaged(tmp_path):
    left = np.full(16000, 16384, dtype=np.int16)  # 0.5 full scale
    right = np.full(16000, -8192, dtype=np.int16)  # -0.25
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="PCM_16")
    clip = read_clip(tmp_path / "s.wav")
    assert (
        clip.channels == 2
        and clip.original_sample_rate == 16000
        and clip.original_num_samples == 16000
    )
    np.testing.assert_allclose(clip.wave.numpy(), 0.125, atol=1e-6)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    for sr in (8000, 22050, 48000):
        t = np.arange(sr) / sr
        sf.write(tmp_path / f"{sr}.wav", 0.5 * np.sin(2 * np.pi * 440 * t), sr, subtype="FLOAT")
        wave = load_audio(tmp_path / f"{sr}.wav").numpy()
        assert wave.shape == (16000,)
        assert abs(_dominant_hz(wave, 16000) - 440) < 2


def test_missing_file(tmp_path):
    with pytest.raises(AudioInputError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_unreadable_file_names_file_and_fix(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioInputError, match=r"bad\.wav.*cannot be read.*ffmpeg"):
        load_audio(bad)


def test_empty_file(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(AudioInputError, match=r"empty\.wav.*no audio samples"):
        load_audio(tmp_path / "empty.wav")


def test_nan_audio(tmp_path):
    x = np.full(16000, np.nan, dtype=np.float32)
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioInputError, match=r"nan\.wav.*NaN or infinite"):
        load_audio(tmp_path / "nan.wav")


def test_too_short_audio(tmp_path):
    sf.write(tmp_path / "short.wav", np.zeros(639), 16000)
    with pytest.raises(AudioInputError, match=r"short\.wav.*too short.*640 samples"):
        load_audio(tmp_path / "short.wav")
    sf.write(tmp_path / "ok.wav", np.zeros(640), 16000)
    assert load_audio(tmp_path / "ok.wav").shape == (640,)


def test_write_roundtrip_and_atomic(tmp_path):
    x = torch.linspace(-0.9, 0.9, 16000)
    write_audio(tmp_path / "o.flac", x, 16000)
    np.testing.assert_allclose(sf.read(tmp_path / "o.flac")[0], x.numpy(), atol=1 / 32768 + 1e-6)
    write_audio(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(tmp_path / "f.wav", dtype="float32")[0], x.numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.wav", "o.flac"]  # no temp files left


def test_failed_write_keeps_existing_file(tmp_path):
    target = tmp_path / "keep.wav"
    write_audio(target, torch.zeros(1000), 16000)
    before = target.read_bytes()
    with pytest.raises(ValueError):
        write_audio(target, torch.zeros(1000), 16000, subtype="NOT_A_SUBTYPE")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


def test_unsupported_output_format(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp3"):
        write_audio(tmp_path / "x.mp3", torch.zeros(10), 16000)
