"""DNSMOS and speaker similarity run offline (models ship in their wheels) and rank clean
speech above noisy speech."""

import pytest

from sonotok.evaluation import SpeakerSimilarity, dnsmos

from .conftest import add_noise


@pytest.fixture(scope="module")
def speaker():
    return SpeakerSimilarity()


def test_dnsmos_ranks_clean_speech_above_noisy(speech, noisy):
    clean_scores = dnsmos(speech["a2"])
    noisy_scores = dnsmos(noisy)
    assert set(clean_scores) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}
    assert all(1.0 <= v <= 5.0 for v in clean_scores.values())
    assert clean_scores["dnsmos_ovrl"] > noisy_scores["dnsmos_ovrl"] + 0.5
    assert clean_scores["dnsmos_bak"] > noisy_scores["dnsmos_bak"] + 1.0


def test_dnsmos_rejects_other_rates(speech):
    with pytest.raises(ValueError, match="16 kHz"):
        dnsmos(speech["a1"], sample_rate=8000)


def test_speaker_similarity_ranks_clean_above_noisy(speaker, speech):
    # Reference: one utterance; candidates: another utterance of the same voice, clean or noisy.
    clean = speaker(speech["a1"], speech["a2"])
    noisy = speaker(speech["a1"], add_noise(speech["a2"], 0.0, seed=2))
    assert clean > noisy + 0.05
    assert speaker(speech["a1"], speech["a1"]) == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= noisy <= 1.0
