import struct
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.core.audio import (
    DECODE_BLOCK,
    MAX_SAMPLES_PER_BYTE,
    read_audio,
    read_clip,
    resample,
)
from sonotok.tokenizer import AudioInputError, load_audio, write_audio


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


def _wav_with_rate(path, rate: int, seconds: float = 2.0) -> None:
    """A valid 16 kHz 16-bit wav whose header then claims `rate` (fmt chunk bytes 24-31)."""
    sf.write(path, np.zeros(int(16000 * seconds), np.float32), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", rate * 2)  # byte rate of mono 16-bit
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rate", [1, 999, 768_001, 4_000_000])
def test_implausible_header_rate_is_refused_before_any_work(tmp_path, rate):
    """A 64 KB wav labelled 1 Hz used to take minutes and GBs to resample to 16 kHz."""
    path = tmp_path / "liar.wav"
    _wav_with_rate(path, rate)
    start = time.perf_counter()
    with pytest.raises(AudioInputError, match=rf"liar\.wav: sample rate {rate} Hz.*re-encode"):
        load_audio(path)
    with pytest.raises(AudioInputError, match=rf"{rate} Hz"):
        read_audio(path)
    assert time.perf_counter() - start < 1.0


def test_rates_at_the_bounds_are_read(tmp_path):
    low, high = tmp_path / "low.wav", tmp_path / "high.wav"
    _wav_with_rate(low, 1000, seconds=0.1)  # 1600 samples at 1 kHz = 1.6 s
    assert load_audio(low).shape == (25600,)
    _wav_with_rate(high, 768_000, seconds=3.0)  # 48000 samples at 768 kHz = 62.5 ms
    assert load_audio(high).shape == (1000,)


def _flac_claiming(path, total: int) -> None:
    """A valid 1 s flac whose STREAMINFO then claims `total` samples (low 36 bits, bytes 18-25)."""
    sf.write(path, np.zeros(16000, np.float32), 16000, format="FLAC")
    data = bytearray(path.read_bytes())
    bits = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1) | total
    data[18:26] = bits.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def test_header_claiming_more_than_the_file_holds_is_refused_without_allocating(tmp_path):
    """2^36 samples claimed in a ~100-byte flac: once a 256 GB allocation and a traceback."""
    path = tmp_path / "huge.flac"
    _flac_claiming(path, (1 << 36) - 1)
    tracemalloc.start()
    try:
        with pytest.raises(AudioInputError, match=r"huge\.flac: the header claims 68719476735"):
            read_clip(path)
        with pytest.raises(AudioInputError, match="per byte"):
            read_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    _flac_claiming(path, 8000)  # a claim below what the stream holds is simply what is read
    assert load_audio(path).shape == (8000,)


def test_decoder_bounds_work_even_when_the_header_states_no_length(tmp_path, monkeypatch):
    """Streams without a stated length skip the header check; the block decoder still stops."""
    import sonotok.core.audio as audio

    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(200_000, np.float32), 16000, subtype="PCM_U8")  # 1 byte per sample
    monkeypatch.setattr(audio, "_check_claim", lambda *args: None)
    monkeypatch.setattr(audio, "SIZE_CHECK_FLOOR", 0)
    monkeypatch.setattr(audio, "MAX_SAMPLES_PER_BYTE", 1)
    monkeypatch.setattr(audio, "DECODE_BLOCK", 4096)
    assert read_audio(path, out_rate=None)[0].shape == (200_000, 1)  # 1 sample per byte: fine
    with pytest.raises(AudioInputError, match=r"long\.wav: converting 16000 Hz → 48000 Hz"):
        read_audio(path, out_rate=48000)  # would triple the samples
    monkeypatch.setattr(audio, "MAX_SAMPLES_PER_BYTE", 0.5)
    with pytest.raises(AudioInputError, match=r"long\.wav: decoding gives more than 1\d{5} "):
        read_audio(path, out_rate=None)  # stopped after ~half the file, not at the end


def test_silent_flac_compresses_far_below_the_size_bound(tmp_path):
    """Genuine highly compressed audio (20 s of 8-channel digital silence) is not refused."""
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros((20 * 48000, 8), np.float32), 48000, format="FLAC")
    assert 20 * 48000 * 8 > MAX_SAMPLES_PER_BYTE * path.stat().st_size / 4  # within 4x of it
    clip = read_clip(path)
    assert clip.wave.shape == (320000,) and clip.channels == 8 and clip.wave.abs().max() == 0


def test_many_channels_are_averaged_in_blocks(tmp_path, tone):
    """A 256-channel file is read with memory near its mono length, not channels × length."""
    channels, frames = 256, 32000
    data = np.tile(tone(frames)[:, None], (1, channels))
    data[:, 1::2] *= 0.5  # mean over channels = 0.75 × tone
    path = tmp_path / "wide.wav"
    sf.write(path, data, 16000, subtype="PCM_16")
    del data
    tracemalloc.start()
    try:
        clip = read_clip(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.channels == 256 and clip.original_num_samples == frames
    np.testing.assert_allclose(clip.wave.numpy(), 0.75 * tone(frames), atol=1e-4)
    assert peak < 4 * 4 * DECODE_BLOCK  # a few decode blocks; the file decodes to 32 MB


def test_load_audio_with_no_rate_keeps_the_files_rate(tmp_path, tone):
    x = tone(22050, 22050)
    sf.write(tmp_path / "t.wav", np.stack([x, -x], 1), 22050, subtype="FLOAT")
    wave = load_audio(tmp_path / "t.wav", sample_rate=None)
    assert wave.shape == (22050,) and wave.abs().max() < 1e-6  # channels averaged, no resampling
    sf.write(tmp_path / "m.wav", x, 22050, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "m.wav", None).numpy(), x)
    clip = read_clip(tmp_path / "m.wav", None)
    assert (clip.sample_rate, clip.original_sample_rate) == (22050, 22050)
    with pytest.raises(AudioInputError, match="sample_rate argument: sample rate 0 Hz"):
        load_audio(tmp_path / "m.wav", 0)


def test_resample_refuses_implausible_rates():
    with pytest.raises(AudioInputError, match="cannot resample 1 Hz → 16000 Hz"):
        resample(np.zeros(10, np.float32), 1, 16000)


def test_encode_explains_a_samples_by_channels_array(tiny_tokenizer, tone):
    """sf.read gives (N, 2); read as a batch it was N clips of 2 samples ("too short")."""
    stereo = np.stack([tone(16000, seed=1), tone(16000, seed=2)], 1)
    for audio in (stereo, torch.from_numpy(stereo), [stereo]):
        with pytest.raises(AudioInputError, match=r"\(16000, 2\).*mean\(axis=1\).*wave\.T"):
            tiny_tokenizer.encode(audio)
    with pytest.raises(AudioInputError, match=r"\(samples, channels\)"):
        tiny_tokenizer.reconstruct(stereo)
    per_channel = tiny_tokenizer.encode(stereo.T)
    assert per_channel.shape == (2, 25, tiny_tokenizer.latent_dim)
    torch.testing.assert_close(per_channel[1], tiny_tokenizer.encode(stereo[:, 1].copy()))
    assert tiny_tokenizer.encode(stereo.mean(axis=1)).shape == (25, tiny_tokenizer.latent_dim)


def test_encode_refuses_an_implausible_sample_rate(tiny_tokenizer, tone):
    start = time.perf_counter()
    with pytest.raises(AudioInputError, match="sample_rate argument: sample rate 1 Hz"):
        tiny_tokenizer.encode(tone(64000), sample_rate=1)
    assert time.perf_counter() - start < 1.0
