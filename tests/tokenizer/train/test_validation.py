"""Validation distances: zero for identical audio, growing with distortion."""

import pytest
import torch

from sonotok.tokenizer.train.validation import mel_distance, speech_scores, stft_distance


def test_distances_grow_with_noise(tone):
    x = torch.from_numpy(tone(16000))[None]
    assert mel_distance(x, x) == 0 and stft_distance(x, x) == 0
    noisy = [x + a * torch.randn_like(x) for a in (0.003, 0.03)]
    assert 0 < mel_distance(x, noisy[0]) < mel_distance(x, noisy[1])
    assert 0 < stft_distance(x, noisy[0]) < stft_distance(x, noisy[1])


def test_speech_scores_when_installed(tone):
    pytest.importorskip("pystoi")
    x = torch.from_numpy(tone(32000))[None]
    scores = speech_scores(x, x)
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-3)
    assert speech_scores(x, torch.randn_like(x) * 0.1)["stoi"] < 0.5
