"""`domain="auto"`: the shipped classifier picks the partition on generated speech, music and
sound, and changes it per window in a long mixed file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sonotok.core.audio import resample
from sonotok.corpus import CorpusSpec, make_clip
from sonotok.tokenizer.unicodec.domain import DomainClassifier

# corpus indices far from the classifier's training clips (scripts/train_unicodec_domain.py
# trains on 0…, validates on 10,000…, tests on 20,000…)
FIRST = 50_000


def _clip(source: str, index: int, seconds: float) -> torch.Tensor:
    wave = make_clip(CorpusSpec(seconds=seconds, seed=3), source, index).wave
    return torch.from_numpy(resample(wave.astype(np.float32), 16000, 24000))


@pytest.mark.parametrize(
    ("source", "domain"),
    [("speech", "speech"), ("music", "music"), ("sound", "sound"), ("noise", "sound")],
)
def test_auto_picks_the_domain_of_generated_clips(source, domain):
    classifier = DomainClassifier.load()
    votes = [classifier(_clip(source, FIRST + i, 4.0), 320)[0][2] for i in range(5)]
    assert votes.count(domain) >= 4, votes


def test_auto_codes_lie_in_the_chosen_partition(tiny):
    wave = _clip("speech", FIRST, 3.0)
    codes = tiny.codes_waves([wave], domain="auto")[0]
    assert tiny.code_metadata(codes)["domain"] == "speech"
    assert int(codes.max()) < tiny.config.partition("speech")[1]


def test_a_long_mixed_file_changes_domain_per_window(tiny):
    speech = _clip("speech", FIRST + 1, 10.0)[:240000]
    speech = torch.nn.functional.pad(speech, (0, 240000 - speech.numel()))
    music = _clip("music", FIRST + 1, 10.0)[:240000]
    wave = torch.cat([speech, music])
    names = tiny.frame_domains(wave, "auto")
    hop = tiny.hop_samples
    assert len(names) == tiny.num_latent_frames(wave.numel())
    assert set(names[: 240000 // hop]) == {"speech"} and set(names[240000 // hop :]) == {"music"}
    assert tiny.frame_domains(wave, "sound") == ["sound"] * len(names)


def test_windows_cover_the_clip_and_a_short_tail_joins_its_neighbour():
    windows = DomainClassifier.windows(24000 * 21, 320)  # 10 s, 10 s, 1 s tail → 10 s, 11 s
    assert windows == [(0, 240000), (240000, 504000)]
    assert DomainClassifier.windows(1000, 320) == [(0, 1000)]
