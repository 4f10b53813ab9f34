"""Intrusive speech metrics: wideband PESQ, STOI and SI-SDR.

PESQ is the ITU-T P.862.2 reference code through the ``pesq`` package (wideband mode, 16 kHz);
STOI is ``pystoi`` (classic STOI, Taal et al. 2011; ``extended=True`` gives ESTOI). Both take the
reference first. SI-SDR follows Le Roux et al., "SDR – half-baked or well done?" (ICASSP 2019).
"""

from __future__ import annotations

import math

import numpy as np

# P.862.2 wideband PESQ works at 16 kHz (8 kHz is narrowband only).
PESQ_SAMPLE_RATE = 16000
# SI-SDR of identical signals is infinite; report this ceiling instead (keeps JSON valid).
SI_SDR_CEILING_DB = 150.0


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _check_pair(reference: np.ndarray, estimate: np.ndarray) -> None:
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference and estimate differ in length ({reference.size} vs {estimate.size} "
            "samples); trim them to the same length first"
        )


def pesq_wb(reference, estimate, sample_rate: int = PESQ_SAMPLE_RATE) -> float:
    """Wideband PESQ (MOS-LQO, about 1.04 to 4.64) of ``estimate`` against ``reference``.

    Returns NaN when the reference code refuses the pair: no speech found (silence or pure
    noise) or a buffer shorter than it can score.
    """
    from pesq import PesqError, pesq

    if sample_rate != PESQ_SAMPLE_RATE:
        raise ValueError(f"wideband PESQ needs 16 kHz audio, got {sample_rate} Hz; resample first")
    ref, est = _as_numpy(reference), _as_numpy(estimate)
    _check_pair(ref, est)
    if not (ref.any() and est.any()):
        return math.nan  # all-zero input: nothing to score (the C code would divide by zero)
    try:
        return float(pesq(sample_rate, ref, est, "wb"))
    except PesqError:
        return math.nan


def stoi(reference, estimate, sample_rate: int, extended: bool = False) -> float:
    """STOI (0..1) of ``estimate`` against ``reference`` via ``pystoi`` (resamples to 10 kHz)."""
    from pystoi import stoi as _stoi

    ref, est = _as_numpy(reference), _as_numpy(estimate)
    _check_pair(ref, est)
    return float(_stoi(ref, est, sample_rate, extended=extended))


def si_sdr(reference, estimate) -> float:
    """Scale-invariant SDR in dB (higher is better).

    Both signals are made zero-mean; the reference is scaled by the projection of the estimate
    onto it, and the residual counts as distortion. Capped at ``SI_SDR_CEILING_DB``.
    """
    ref, est = _as_numpy(reference), _as_numpy(estimate)
    _check_pair(ref, est)
    ref = ref - ref.mean()
    est = est - est.mean()
    ref_energy = float(ref @ ref)
    if ref_energy == 0.0:
        return math.nan
    target = (float(est @ ref) / ref_energy) * ref
    target_energy = float(target @ target)
    residual = est - target
    noise_energy = max(float(residual @ residual), target_energy * 10 ** (-SI_SDR_CEILING_DB / 10))
    if target_energy == 0.0:
        return -SI_SDR_CEILING_DB
    return float(10.0 * np.log10(target_energy / noise_energy))


def speech_metrics(reference, estimate, sample_rate: int) -> dict[str, float]:
    """PESQ (16 kHz only, else NaN), STOI and SI-SDR of one pair, keyed by metric name."""
    return {
        "pesq": pesq_wb(reference, estimate) if sample_rate == PESQ_SAMPLE_RATE else math.nan,
        "stoi": stoi(reference, estimate, sample_rate),
        "si_sdr": si_sdr(reference, estimate),
    }
