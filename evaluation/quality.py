"""Model-based speech quality: DNSMOS P.835 and speaker similarity. Both run offline.

- DNSMOS P.835 (Reddy et al., ICASSP 2022): the ONNX models shipped in the ``speechmos`` wheel;
  SIG / BAK / OVRL on 9.01 s windows hopped by 1 s (clips shorter than that are looped), mapped
  through the non-personalised polynomials, averaged per clip. ``p808`` is the P.808 model's MOS.
- Speaker similarity: cosine between GE2E speaker embeddings from ``resemblyzer`` (weights ship
  in its wheel; 256-d, L2-normalised; audio is volume-normalised and long silences trimmed by
  its ``preprocess_wav`` first).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sonotok.core.errors import MissingDependencyError

# DNSMOS and resemblyzer models both take 16 kHz input.
QUALITY_SAMPLE_RATE = 16000


def _require(module: str, package: str):
    import importlib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
            return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{module} is not importable ({err}); install the evaluation extra: "
            f"pip install 'sonotok[eval]' (needs {package})"
        ) from err


def _to_float_array(wave) -> np.ndarray:
    if hasattr(wave, "detach"):
        wave = wave.detach().cpu().numpy()
    return np.asarray(wave, dtype=np.float32).reshape(-1)


def _check_rate(sample_rate: int) -> None:
    if sample_rate != QUALITY_SAMPLE_RATE:
        raise ValueError(f"expects 16 kHz audio, got {sample_rate} Hz; resample first")


def dnsmos(wave, sample_rate: int = QUALITY_SAMPLE_RATE) -> dict[str, float]:
    """DNSMOS P.835 of one clip: {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}.

    Samples outside [-1, 1] are clipped (the models expect float PCM in that range).
    """
    _check_rate(sample_rate)
    dnsmos_module = _require("speechmos.dnsmos", "speechmos, librosa, onnxruntime, requests")
    x = np.clip(_to_float_array(wave), -1.0, 1.0)
    scores = dnsmos_module.run(x, sr=sample_rate)
    return {
        "dnsmos_sig": float(scores["sig_mos"]),
        "dnsmos_bak": float(scores["bak_mos"]),
        "dnsmos_ovrl": float(scores["ovrl_mos"]),
        "dnsmos_p808": float(scores["p808_mos"]),
    }


class SpeakerSimilarity:
    """Cosine similarity of resemblyzer speaker embeddings (about -1..1; same speaker ~0.8+)."""

    def __init__(self, device: str = "cpu") -> None:
        self._resemblyzer = _require("resemblyzer", "resemblyzer and setuptools<81")
        self.encoder = self._resemblyzer.VoiceEncoder(device=device, verbose=False)

    def embed(self, wave, sample_rate: int = QUALITY_SAMPLE_RATE) -> np.ndarray:
        """(L,) 16 kHz wave -> (256,) unit-norm speaker embedding (NaN if no speech is left
        after silence trimming)."""
        _check_rate(sample_rate)
        x = self._resemblyzer.preprocess_wav(_to_float_array(wave).astype(np.float64))
        if x.size == 0:
            return np.full(256, np.nan, dtype=np.float32)
        return np.asarray(self.encoder.embed_utterance(x.astype(np.float32)), dtype=np.float32)

    def __call__(self, reference, estimate, sample_rate: int = QUALITY_SAMPLE_RATE) -> float:
        a, b = self.embed(reference, sample_rate), self.embed(estimate, sample_rate)
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            return math.nan
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
