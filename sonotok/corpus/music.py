"""Music clips: a generated melody over a chord progression in a random key, mode and tempo,
written as MIDI (mido) and rendered by fluidsynth through a General MIDI soundfont.

One instrument plays both melody and chords (sometimes with a drum kit), so the caption's
instrument is what is heard. Mood follows mode and tempo (major/minor × slow/medium/fast).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from sonotok.core.audio import SAMPLE_RATE

from .clip import Clip, fit_length, pick
from .tools import decode, require, run, soundfont

# (General MIDI program, name, octave shift of the melody) — GM 1 program numbers, 0-based.
INSTRUMENTS = [
    (0, "acoustic grand piano", 0),
    (4, "electric piano", 0),
    (6, "harpsichord", 0),
    (10, "music box", 1),
    (11, "vibraphone", 0),
    (12, "marimba", 0),
    (19, "church organ", 0),
    (21, "accordion", 0),
    (24, "nylon-string guitar", -1),
    (25, "steel-string guitar", -1),
    (26, "jazz guitar", -1),
    (40, "violin", 0),
    (42, "cello", -2),
    (46, "harp", 0),
    (48, "string ensemble", 0),
    (56, "trumpet", 0),
    (65, "alto saxophone", -1),
    (71, "clarinet", -1),
    (73, "flute", 1),
    (80, "square-wave synth lead", 0),
    (88, "new-age synth pad", 0),
]
NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}
# Chord progressions as 0-based scale degrees (I–V–vi–IV and friends).
PROGRESSIONS = {
    "major": [[0, 4, 5, 3], [0, 3, 4, 0], [5, 3, 0, 4], [0, 5, 3, 4], [1, 4, 0, 0]],
    "minor": [[0, 3, 4, 0], [0, 5, 2, 6], [0, 6, 5, 6], [0, 3, 6, 2]],
}
MOODS = {  # (mode, tempo class) → mood
    ("major", "slow"): "calm",
    ("major", "medium"): "cheerful",
    ("major", "fast"): "energetic",
    ("minor", "slow"): "sad",
    ("minor", "medium"): "pensive",
    ("minor", "fast"): "dramatic",
}
RHYTHMS = [  # one bar of melody note lengths in beats (4/4)
    [1, 1, 1, 1],
    [2, 1, 1],
    [1, 0.5, 0.5, 1, 1],
    [0.5] * 8,
    [2, 2],
    [1.5, 0.5, 1, 1],
    [1, 1, 2],
    [0.5, 0.5, 1, 0.5, 0.5, 1],
]
CAPTIONS = [
    "A {mood} {instrument} piece in {key} at {tempo} BPM{drums}.",
    "{Mood} music played on {instrument} in {key}, {tempo} beats per minute{drums}.",
    "A {tempo} BPM {mood} melody in {key} on {instrument}{drums}.",
    "{Instrument}{drums} in {key} at {tempo} BPM, with a {mood} mood.",
]
TICKS = 480  # MIDI ticks per beat


def tempo_class(bpm: int) -> str:
    return "slow" if bpm < 90 else "medium" if bpm < 125 else "fast"


def compose(rng: np.random.Generator, seconds: float):
    """A MIDI file (mido.MidiFile) and its facts: melody + chords (+ drums) covering `seconds`."""
    import mido

    program, instrument, shift = pick(rng, INSTRUMENTS)
    mode = pick(rng, list(SCALES))
    tonic = int(rng.integers(12))
    bpm = int(rng.integers(60, 161))
    drums = bool(rng.random() < 0.3)
    scale = SCALES[mode]
    progression = pick(rng, PROGRESSIONS[mode])
    bars = int(np.ceil(seconds * bpm / 60 / 4)) + 1
    style = pick(rng, ["block", "half", "arpeggio"])

    def pitch(degree: int, octave: int) -> int:
        return 12 * (octave + 1) + tonic + scale[degree % 7] + 12 * (degree // 7)

    events = []  # (start_tick, channel, note, velocity, length_ticks)
    melody_degree = int(rng.integers(0, 5))
    for bar in range(bars):
        chord = progression[bar % len(progression)]
        t0 = bar * 4 * TICKS
        triad = [pitch(chord + k, 3) for k in (0, 2, 4)]
        if style == "block":
            events += [(t0, 0, n, 60, 4 * TICKS - 20) for n in triad]
        elif style == "half":
            events += [
                (t0 + h * 2 * TICKS, 0, n, 58, 2 * TICKS - 20) for h in (0, 1) for n in triad
            ]
        else:
            for e in range(8):
                events.append(
                    (t0 + e * TICKS // 2, 0, triad[e % 3] + 12 * (e % 6 >= 3), 55, TICKS // 2)
                )
        events.append((t0, 0, pitch(chord, 2), 62, 4 * TICKS - 20))  # bass note
        position = 0.0
        for i, beats in enumerate(pick(rng, RHYTHMS)):
            strong = position in (0.0, 2.0)
            if strong:  # land on a chord tone on strong beats
                target = chord + 2 * int(rng.integers(3))
                melody_degree = target + 7 * round((melody_degree - target) / 7)
            else:
                melody_degree += int(rng.choice([-2, -1, -1, 1, 1, 2]))
            melody_degree = int(np.clip(melody_degree, -3, 10))
            if i == 0 or rng.random() > 0.1:  # an occasional rest
                note = pitch(melody_degree, 5 + shift)
                length = int(beats * TICKS) - 10
                events.append(
                    (t0 + int(position * TICKS), 0, note, int(rng.integers(80, 110)), length)
                )
            position += beats
        if drums:
            for beat in range(4):
                tb = t0 + beat * TICKS
                events.append((tb, 9, 36 if beat % 2 == 0 else 38, 90, TICKS // 4))
                events += [(tb + h * TICKS // 2, 9, 42, 60, TICKS // 4) for h in (0, 1)]

    midi = mido.MidiFile(ticks_per_beat=TICKS)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    messages = []
    for start, channel, note, velocity, length in events:
        note = int(np.clip(note, 21, 108))
        messages.append((start, 1, channel, note, velocity))
        messages.append((start + length, 0, channel, note, 0))  # note-offs sort first at a tick
    now = 0
    for tick, on, channel, note, velocity in sorted(messages):
        kind = "note_on" if on else "note_off"
        track.append(
            mido.Message(kind, note=note, velocity=velocity, channel=channel, time=tick - now)
        )
        now = tick
    key = f"{NOTE_NAMES[tonic]} {mode}"
    facts = dict(instrument=instrument, tempo=bpm, key=key, mood=MOODS[(mode, tempo_class(bpm))])
    return midi, facts, drums


def render(midi, sf2: str) -> np.ndarray:
    """fluidsynth (offline, no audio device) → (N,) float32 at 16 kHz."""
    with tempfile.TemporaryDirectory(prefix="sonotok-music-") as tmp:
        mid, wav = Path(tmp) / "clip.mid", Path(tmp) / "clip.wav"
        midi.save(str(mid))
        run(
            [
                require("fluidsynth"),
                "-n",
                "-i",
                "-q",
                "-g",
                "0.7",
                "-r",
                str(SAMPLE_RATE),
                "-T",
                "wav",
                "-F",
                str(wav),
                sf2,
                str(mid),
            ]
        )
        return decode(wav)


def make_music(rng: np.random.Generator, seconds: float, sf2: str | None = None) -> Clip:
    """A `seconds`-long music clip and its caption (instrument, tempo, key, mood)."""
    midi, facts, drums = compose(rng, seconds)
    wave = fit_length(render(midi, soundfont(sf2)), int(seconds * SAMPLE_RATE), fade=1600)
    facts["duration"] = wave.shape[0] / SAMPLE_RATE
    words = dict(
        facts,
        Mood=facts["mood"].capitalize(),
        Instrument=facts["instrument"].capitalize(),
        drums=" with drums" if drums else "",
    )
    return Clip(wave, pick(rng, CAPTIONS).format(**words), "music", facts)
