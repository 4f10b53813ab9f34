"""PESQ / STOI are the reference packages; SI-SDR matches the SNR of added noise."""

import math

import numpy as np
import pesq
import pystoi
import pytest
import torch

from sonotok.evaluation import pesq_wb, si_sdr, speech_metrics, stoi

from .conftest import add_noise


def test_identical_speech_scores_maximum_pesq_and_stoi(speech):
    x = speech["a1"]
    assert pesq_wb(x, x) == pytest.approx(4.644, abs=0.01)
    assert stoi(x, x, 16000) == pytest.approx(1.0, abs=1e-6)
    assert si_sdr(x, x) >= 100.0


def test_ours_equals_pesq_and_pystoi_packages(speech, noisy):
    ref, deg = speech["a2"].numpy().astype(np.float64), noisy.numpy().astype(np.float64)
    assert pesq_wb(speech["a2"], noisy) == pesq.pesq(16000, ref, deg, "wb")
    assert stoi(speech["a2"], noisy, 16000) == pystoi.stoi(ref, deg, 16000)
    assert stoi(speech["a2"], noisy, 16000, extended=True) == pystoi.stoi(
        ref, deg, 16000, extended=True
    )
    assert 1.0 < pesq_wb(speech["a2"], noisy) < 2.5


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 5.0, 10.0, 20.0, 30.0])
def test_si_sdr_of_noise_at_known_snr_is_that_snr(speech, snr_db):
    clean = speech["a1"]
    assert si_sdr(clean, add_noise(clean, snr_db, seed=3)) == pytest.approx(snr_db, abs=0.1)


def test_si_sdr_ignores_scale_and_offset(speech):
    clean = speech["a1"]
    deg = add_noise(clean, 12.0, seed=5)
    assert si_sdr(clean, 0.3 * deg) == pytest.approx(si_sdr(clean, deg), abs=1e-5)
    assert si_sdr(clean, deg + 0.01) == pytest.approx(si_sdr(clean, deg), abs=1e-6)


def test_pesq_of_silence_is_undefined_not_an_exception():
    silence = torch.zeros(32000)
    assert math.isnan(pesq_wb(silence, silence))


def test_speech_metrics_bundle(speech, noisy):
    scores = speech_metrics(speech["a2"], noisy, 16000)
    assert set(scores) == {"pesq", "stoi", "si_sdr"}
    assert scores["si_sdr"] == pytest.approx(5.0, abs=0.1)
