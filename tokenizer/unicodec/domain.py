"""The automatic domain choice for UniCodec: a linear probe on cheap log-mel statistics.

UniCodec quantises a clip inside the codebook partition of its domain, which its official code
must be told. `DomainClassifier` picks it instead: gain-normalised log-mel statistics of a
window (per-band mean, spread and frame-to-frame change, plus how much of the window is near
silence) → LayerNorm → Linear → speech / music / sound, the same `LayerNorm → Linear` probe
sonotok's probe tools train (`evaluation/probe.py`). Long clips are judged per window of
`WINDOW_SECONDS`, so a file that changes domain changes partition with it.

The shipped weights (`sonotok/mini/unicodec_domain/`) are trained on the synthetic corpus
(`sonotok corpus`: speech, music, sounds and noise, noise counted as sound) by
`scripts/train_unicodec_domain.py` (200 clips per domain, 2–8 s), which also reports the
held-out accuracy written in the folder's README.md: 0.977 on 300 test clips of disjoint corpus
indices (speech 100/100, music 98/100, sound 95/100). It has seen synthetic audio only.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from sonotok.core.errors import ModelNotFoundError
from sonotok.core.hub import read_safetensors

from ..mel import MelSpectrogram
from .configs import DOMAINS

SAMPLE_RATE = 24000  # the features are taken at UniCodec's rate
WINDOW_SECONDS = 10.0  # one decision per 10 s (the official training clip length)
MIN_WINDOW_SECONDS = 2.0  # a shorter tail joins the window before it
N_MELS = 48
FEATURE_DIM = 3 * N_MELS + 2


def asset_folder() -> Path:
    """Where the shipped classifier weights live (package data of `sonotok`)."""
    return Path(str(resources.files("sonotok") / "mini" / "unicodec_domain"))


class DomainFeatures(nn.Module):
    """wave (Tensor): (N,) at 24 kHz → (FEATURE_DIM,) statistics, independent of the gain."""

    def __init__(self):
        super().__init__()
        self.mel = MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=480, n_mels=N_MELS)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] <= self.mel.n_fft // 2:  # too short for one centred frame: pad
            wave = nn.functional.pad(wave, (0, self.mel.n_fft // 2 + 1 - wave.shape[-1]))
        logmel = torch.log(self.mel(wave.float()) + 1e-8)  # (n_mels, frames)
        logmel = logmel - logmel.mean()  # gain-invariant
        energy = torch.logsumexp(logmel, dim=0)
        delta = (
            (logmel[:, 1:] - logmel[:, :-1]).abs().mean(1)
            if logmel.shape[1] > 1
            else (torch.zeros(N_MELS, device=wave.device))
        )
        quiet = (energy < energy.max() - math.log(1e3)).float().mean()  # share below −30 dB
        return torch.cat(
            [
                logmel.mean(1),
                logmel.std(1, unbiased=False),
                delta,
                energy.std(0, unbiased=False)[None],
                quiet[None],
            ]
        )


class DomainClassifier(nn.Module):
    """wave (Tensor): (N,) at 24 kHz → one domain name per window (see `windows`)."""

    def __init__(self):
        super().__init__()
        self.features = DomainFeatures()
        self.norm = nn.LayerNorm(FEATURE_DIM)
        self.linear = nn.Linear(FEATURE_DIM, len(DOMAINS))

    @classmethod
    def load(cls, folder: str | Path | None = None) -> DomainClassifier:
        """The weights in `folder` (default: the shipped ones)."""
        file = Path(folder or asset_folder()) / "model.safetensors"
        if not file.is_file():
            raise ModelNotFoundError(
                f"{file}: UniCodec's domain classifier is missing; reinstall sonotok, retrain it "
                "with scripts/train_unicodec_domain.py, or pass domain='speech'|'music'|'sound'"
            )
        model = cls()
        model.load_state_dict(read_safetensors(file))
        return model.eval()

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., FEATURE_DIM) → (..., 3) speech / music / sound scores."""
        return self.linear(self.norm(feats))

    @staticmethod
    def windows(num_samples: int, hop: int) -> list[tuple[int, int]]:
        """[start, stop) sample ranges, on frame boundaries, that each get one decision."""
        size = round(WINDOW_SECONDS * SAMPLE_RATE / hop) * hop
        bounds = list(range(0, num_samples, size)) + [num_samples]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < MIN_WINDOW_SECONDS * SAMPLE_RATE:
            del bounds[-2]
        return list(zip(bounds[:-1], bounds[1:]))

    @torch.no_grad()
    def forward(self, wave: torch.Tensor, hop: int) -> list[tuple[int, int, str]]:
        """(start, stop, domain) per window of `wave` (N,) at 24 kHz."""
        out = []
        for start, stop in self.windows(wave.shape[-1], hop):
            scores = self.logits(self.features(wave[start:stop]))
            out.append((start, stop, DOMAINS[int(scores.argmax())]))
        return out
