"""DAC mel / STFT distances: zero on identical signals, equal to an independent numpy/librosa
computation of audiotools' definition."""

import warnings

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from sonotok.evaluation.spectral import (
    DAC_MEL_BANDS,
    DAC_MEL_WINDOWS,
    DAC_STFT_WINDOWS,
    log_mel_image,
    mel_distance,
    min_length,
    stft_distance,
)

from .conftest import add_noise


def _magnitude(x: np.ndarray, window: int) -> np.ndarray:
    # audiotools: sqrt of scipy's (periodic) Hann window, hop = window // 4, centred, reflect pad
    win = np.sqrt(scipy.signal.get_window("hann", window))
    return np.abs(
        librosa.stft(
            x, n_fft=window, hop_length=window // 4, window=win, center=True, pad_mode="reflect"
        )
    )


def reference_mel_distance(x: np.ndarray, y: np.ndarray, sr: int) -> float:
    total = 0.0
    for window, bands in zip(DAC_MEL_WINDOWS, DAC_MEL_BANDS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fb = librosa.filters.mel(sr=sr, n_fft=window, n_mels=bands)
        mx, my = fb @ _magnitude(x, window), fb @ _magnitude(y, window)
        total += np.mean(np.abs(np.log10(np.maximum(mx, 1e-5)) - np.log10(np.maximum(my, 1e-5))))
    return float(total)


def reference_stft_distance(x: np.ndarray, y: np.ndarray) -> float:
    total = 0.0
    for window in DAC_STFT_WINDOWS:
        mx, my = _magnitude(x, window), _magnitude(y, window)
        log_x = np.log10(np.maximum(mx, 1e-5) ** 2)
        log_y = np.log10(np.maximum(my, 1e-5) ** 2)
        total += np.mean(np.abs(log_x - log_y)) + np.mean(np.abs(mx - my))
    return float(total)


def test_identical_signals_have_zero_distances(tone):
    x = torch.from_numpy(tone(24000))
    assert mel_distance(x, x.clone(), 16000) == 0.0
    assert stft_distance(x, x.clone(), 16000) == 0.0


def test_distances_equal_independent_computation_of_dac_definition(tone):
    x = tone(20000, seed=1)
    y = add_noise(torch.from_numpy(x), 10.0, seed=2).numpy()
    ours_mel = mel_distance(torch.from_numpy(y), torch.from_numpy(x), 16000)
    ours_stft = stft_distance(torch.from_numpy(y), torch.from_numpy(x), 16000)
    assert ours_mel == pytest.approx(
        reference_mel_distance(y.astype(np.float64), x.astype(np.float64), 16000), rel=1e-4
    )
    assert ours_stft == pytest.approx(
        reference_stft_distance(y.astype(np.float64), x.astype(np.float64)), rel=1e-4
    )
    assert ours_mel > 0.5 and ours_stft > 0.5


def test_distances_shrink_as_noise_falls(tone):
    x = torch.from_numpy(tone(20000, seed=3))
    mels = [mel_distance(add_noise(x, snr, seed=4), x, 16000) for snr in (0, 10, 20, 40)]
    stfts = [stft_distance(add_noise(x, snr, seed=4), x, 16000) for snr in (0, 10, 20, 40)]
    assert mels == sorted(mels, reverse=True)
    assert stfts == sorted(stfts, reverse=True)


def test_batch_of_signals_averages_like_audiotools(tone):
    x = torch.stack([torch.from_numpy(tone(16000, seed=s)) for s in (5, 6)])
    y = torch.stack([add_noise(row, 10.0, seed=7) for row in x])
    single = [mel_distance(y[i], x[i], 16000) for i in range(2)]
    assert mel_distance(y, x, 16000) == pytest.approx(np.mean(single), rel=1e-5)


def test_too_short_or_mismatched_signals_raise_clear_errors():
    short = torch.zeros(min_length() - 1)
    with pytest.raises(ValueError, match="too short"):
        stft_distance(short, short, 16000)
    with pytest.raises(ValueError, match="same length"):
        mel_distance(torch.zeros(4000), torch.zeros(4001), 16000)


def test_log_mel_image_is_floored_80_db_below_peak(tone):
    wave = torch.cat([torch.from_numpy(tone(8000)), torch.zeros(8000)])  # half silence
    db = log_mel_image(wave, 16000)
    assert db.shape == (80, 16000 // 256 + 1)
    assert db.max() - db.min() == pytest.approx(80.0, abs=1e-3)
