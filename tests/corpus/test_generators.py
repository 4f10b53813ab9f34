"""Each generator on its own: every sound event and noise type, MIDI composition, speech fit."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sonotok.corpus.clip import fit_length, item_rng, set_loudness
from sonotok.corpus.music import SCALES, compose
from sonotok.corpus.noise import TYPES, make_noise
from sonotok.corpus.sounds import EVENTS, make_sound
from sonotok.corpus.synth import colored_noise

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed"
)


def band_db(wave: np.ndarray, low: float, high: float) -> float:
    spec = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / 16000)
    return float(10 * np.log10(spec[(freqs >= low) & (freqs < high)].mean()))


def tonality_db(wave: np.ndarray) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(wave, 2048)[::512] * np.hanning(2048)
    mag = np.abs(np.fft.rfft(frames, axis=1)).mean(0)
    freqs = np.fft.rfftfreq(2048, 1 / 16000)
    idx = np.flatnonzero((freqs > 80) & (freqs < 4000))
    local = np.array([np.median(mag[max(0, i - 20) : i + 21]) for i in idx])
    return float(20 * np.log10((mag[idx] / local).max()))


@needs_sox
@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_sound_event_renders_and_its_caption_names_it(event):
    clip = make_sound(item_rng(0, "sound", 1), 2.0, [event])
    assert clip.wave.shape == (32000,) and clip.wave.dtype == np.float32
    assert np.isfinite(clip.wave).all() and np.sqrt(np.mean(clip.wave**2)) > 1e-4
    assert clip.facts["event"] == event and event in clip.caption.lower()
    assert clip.domain == "sound"


@pytest.mark.parametrize(
    "color, slope", [("white", 0.0), ("pink", -3.0), ("brown", -6.0), ("blue", 3.0)]
)
def test_colored_noise_has_its_slope_per_octave(color, slope):
    x = colored_noise(
        np.random.default_rng(0), 64000, {"white": 0, "pink": 1, "brown": 2, "blue": -1}[color]
    )
    per_octave = (band_db(x, 2000, 4000) - band_db(x, 250, 500)) / 3
    assert abs(per_octave - slope) < 0.6


@needs_sox
@needs_espeak
@pytest.mark.parametrize("kind", sorted(TYPES))
def test_noise_types_are_broadband_except_hum(kind):
    clip = make_noise(item_rng(1, "noise", 0), 2.0, [kind])
    assert clip.facts["event"] == kind and kind in clip.caption.lower()
    wave = clip.wave.astype(np.float64)
    if kind == "hum":
        spec = np.abs(np.fft.rfft(wave))
        peak = np.fft.rfftfreq(len(wave), 1 / 16000)[np.argmax(spec)]
        assert min(abs(peak / 50 - round(peak / 50)), abs(peak / 60 - round(peak / 60))) < 0.02
        assert tonality_db(wave) > 20
        return
    bands = [band_db(wave, lo, 2 * lo) for lo in (125, 250, 500, 1000, 2000, 4000)]
    assert max(bands) - min(bands) < 45, bands  # energy in every octave from 125 Hz to 8 kHz
    if kind != "babble":
        assert tonality_db(wave) < 14


def test_composed_midi_stays_in_its_key_and_fills_the_clip():
    import mido

    for index in range(6):
        midi, facts, drums = compose(item_rng(0, "music", index), 4.0)
        tonic_name, mode = facts["key"].split()
        names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
        scale = {(names.index(tonic_name) + s) % 12 for s in SCALES[mode]}
        notes = [m for m in midi.tracks[0] if m.type == "note_on" and m.channel == 0]
        assert notes and all(m.note % 12 in scale for m in notes)
        assert midi.length >= 4.0  # seconds, at the clip's tempo
        assert round(mido.tempo2bpm(midi.tracks[0][0].tempo)) == facts["tempo"]


def test_loudness_and_length_helpers():
    x = np.sin(np.linspace(0, 200, 16000)) * 3.0
    y = set_loudness(x, -20.0)
    assert abs(20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) + 20) < 0.05
    spiky = np.zeros(16000)
    spiky[5] = 1.0
    assert np.abs(set_loudness(spiky, -10.0)).max() <= 0.95  # the peak limit wins
    assert fit_length(np.ones(100, np.float32), 50)[-1] == 0.0 and fit_length(
        np.ones(10), 20
    ).shape == (20,)


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="speech synthesizers not installed",
)
def test_speech_fits_the_clip_length_and_every_voice_speaks():
    from sonotok.corpus.speech import make_speech, voices

    pool = voices()
    assert {v.engine for v in pool} == {"espeak-ng", "flite"} and len(
        {v.language for v in pool}
    ) >= 8
    for v in (pool[0], pool[-1], next(v for v in pool if v.language == "de")):
        clip = make_speech(item_rng(0, "speech", 0), 2.5, [v])
        assert 0.5 < len(clip.wave) / 16000 <= 2.5
        assert (
            clip.facts["voice"] == f"{v.engine}:{v.name}" and clip.facts["language"] == v.language
        )
