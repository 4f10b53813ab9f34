"""General sound events made with numpy and sox: sirens, bells, knocks, rain, wind, engines,
clapping, beeps, thunder, whistles, footsteps, phones, alarms, birds, clocks, drips, horns,
typing and clinking glasses.

Each event builder returns the wave and the words its caption uses; every caption contains
the event's name (the `event` column), so text-conditioned models and probes can use it.
Some clips are placed in a reverberant room with sox, which the caption then says.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .clip import Clip, fit_length, pick
from .synth import (
    SR,
    band_noise,
    burst,
    colored_noise,
    damped,
    gate,
    place,
    smooth_envelope,
    tone,
)
from .tools import sox, sox_synth


def _siren(rng, n):
    kind = pick(rng, ["wailing", "yelping", "two-tone"])
    t = np.arange(n) / SR
    if kind == "two-tone":
        period = rng.uniform(0.8, 1.2)
        f = np.where((t % period) < period / 2, rng.uniform(420, 480), rng.uniform(560, 640))
    else:
        rate = rng.uniform(0.2, 0.35) if kind == "wailing" else rng.uniform(2.5, 4.0)
        lo, hi = rng.uniform(500, 800), rng.uniform(1200, 1600)
        f = lo + (hi - lo) * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t))
    return tone(f, n, (1.0, 0.45, 0.3, 0.15)), {"kind": kind}


def _bell(rng, n):
    f0 = rng.uniform(180, 450)
    ratios, amps = (
        [0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011],
        [0.6, 1, 0.8, 0.5, 0.6, 0.3, 0.25, 0.2],
    )
    decay = rng.uniform(1.5, 3.0)
    strike = damped([f0 * r for r in ratios], [decay / (1 + 0.4 * i) for i in range(8)], amps, n)
    interval = rng.uniform(1.2, 2.0)
    count = max(1, int(n / SR / interval))
    out = np.zeros(n)
    for i in range(count):
        place(out, strike, int(i * interval * SR))
    return out, {"count": count, "times": "once" if count == 1 else f"{count} times"}


def _doorbell(rng, n):
    high, low = rng.uniform(620, 700), rng.uniform(500, 540)
    note = lambda f: damped([f, 2 * f, 3 * f], [0.9, 0.4, 0.2], [1, 0.3, 0.1], int(1.5 * SR))  # noqa: E731
    out = np.zeros(n)
    start = rng.uniform(0.05, 0.4)
    for repeat in range(1 + int(rng.random() < 0.4)):
        t0 = start + repeat * 1.6
        place(out, note(high), int(t0 * SR))
        place(out, note(low), int((t0 + 0.55) * SR))
    return out, {}


def _knocking(rng, n):
    count = int(rng.integers(2, 6))
    surface = pick(rng, ["wooden", "metal"])
    freqs = (
        [rng.uniform(120, 250), rng.uniform(500, 900)]
        if surface == "wooden"
        else [rng.uniform(700, 1100), rng.uniform(2200, 3000)]
    )
    decays = [0.04, 0.02] if surface == "wooden" else [0.15, 0.08]
    out = np.zeros(n)
    gap = rng.uniform(0.15, 0.3)
    t0 = rng.uniform(0.2, 0.8)
    for _ in range(1 + int(rng.random() < 0.5)):
        for i in range(count):
            hit = damped(freqs, decays, [1, 0.5], int(0.4 * SR)) + 0.3 * burst(
                rng, int(0.4 * SR), 0.004
            )
            place(out, hit * rng.uniform(0.7, 1.0), int((t0 + i * gap) * SR))
        t0 += count * gap + rng.uniform(0.6, 1.0)
    return out, {"count": count, "surface": surface}


def _rain(rng, n):
    heavy = rng.random() < 0.5
    out = colored_noise(rng, n, 1.0) * (0.5 if heavy else 0.2)
    drops = int(n / SR * (rng.uniform(150, 300) if heavy else rng.uniform(20, 60)))
    for start in rng.integers(0, n, drops):
        f = rng.uniform(1500, 6000)
        place(
            out,
            damped([f], [rng.uniform(0.003, 0.01)], [rng.uniform(0.3, 1.0)], int(0.05 * SR)),
            int(start),
        )
    return out, {"strength": "heavy" if heavy else "light"}


def _wind(rng, n):
    strength = pick(rng, ["gentle", "strong", "howling"])
    x = colored_noise(rng, n, 1.6) * smooth_envelope(rng, n, 1.0, 0.2, 1.0)
    if strength == "howling":
        center = rng.uniform(300, 600)
        f = center * smooth_envelope(rng, n, 0.8, 0.8, 1.3)
        x = x + 0.3 * tone(f, n) * smooth_envelope(rng, n, 0.7, 0.0, 1.0)
    low = 300 if strength == "gentle" else 900
    return sox(x, ["lowpass", str(low)]), {"strength": strength}


def _engine(rng, n):
    revving = rng.random() < 0.4
    f0 = rng.uniform(22, 45)
    t = np.arange(n) / SR
    if revving:
        peak = rng.uniform(1.2, 2.2) * n / SR / 2
        f = f0 * (1 + 1.5 * np.exp(-(((t - peak) / 0.7) ** 2)))
    else:
        f = f0 * (1 + 0.02 * smooth_envelope(rng, n, 4, -1, 1))
    harmonics = tuple(1 / (k + 1) ** 0.7 for k in range(24))
    x = tone(f, n, harmonics) + 0.4 * colored_noise(rng, n, 2.0)
    return sox(x, ["lowpass", "2500"]), {"action": "revving" if revving else "idling"}


def _clapping(rng, n):
    crowd = rng.random() < 0.4
    out = np.zeros(n)
    if crowd:
        claps = int(n / SR * rng.uniform(40, 80))
        times = rng.integers(0, n, claps)
    else:
        rate = rng.uniform(2.0, 4.0)
        times = (np.arange(0, n / SR - 0.1, 1 / rate) * SR).astype(int)
    for start in times:
        place(
            out,
            burst(rng, int(0.06 * SR), rng.uniform(0.006, 0.012)) * rng.uniform(0.6, 1.0),
            int(start),
        )
    x = sox(out, ["bandpass", f"{rng.uniform(900, 1600):.0f}", "1.2q"])
    return x, {"who": "a crowd" if crowd else "one person"}


def _beeping(rng, n):
    f = rng.uniform(700, 2600)
    wave = pick(rng, ["sine", "square"])
    length, gap = rng.uniform(0.08, 0.3), rng.uniform(0.1, 0.5)
    carrier = sox_synth(n / SR, [wave, f"{f:.1f}"])[:n]
    carrier = np.pad(carrier, (0, n - carrier.shape[0]))
    pattern = [(s, s + length) for s in np.arange(0.1, n / SR, length + gap)]
    return carrier * gate(n, pattern), {"pitch": "high" if f > 1500 else "low"}


def _thunder(rng, n):
    t = np.arange(n) / SR
    onset = rng.uniform(0.1, 0.8)
    env = np.where(t >= onset, np.exp(-(t - onset) / rng.uniform(0.8, 2.0)), 0.0)
    rumble = colored_noise(rng, n, 2.0) * smooth_envelope(rng, n, 3, 0.3, 1.0) * env
    crack = burst(rng, n, 0.08) * 0.6
    shifted = np.zeros(n)
    place(shifted, crack, int(onset * SR))
    x = sox(rumble + shifted, ["lowpass", "700"])
    return x, {"distance": "close" if rng.random() < 0.5 else "distant"}


def _whistle(rng, n):
    if rng.random() < 0.5:
        t = np.arange(n) / SR
        trill = 0.6 + 0.4 * np.sign(np.sin(2 * np.pi * rng.uniform(22, 35) * t))
        count = int(rng.integers(1, 4))
        pattern, t0 = [], rng.uniform(0.1, 0.5)
        for _ in range(count):
            length = rng.uniform(0.3, 0.9)
            pattern.append((t0, t0 + length))
            t0 += length + rng.uniform(0.2, 0.4)
        x = tone(rng.uniform(2600, 3400), n, (1.0, 0.2)) * trill * gate(n, pattern, 0.01)
        return x + 0.05 * band_noise(rng, n, 2000, 5000) * gate(n, pattern), {
            "kind": "a referee's whistle"
        }
    notes = rng.uniform(900, 2000, int(rng.integers(4, 9)))
    note_len = n / notes.size
    f = np.repeat(notes, int(np.ceil(note_len)))[:n]
    t = np.arange(n) / SR
    f = f * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    x = tone(f, n) * smooth_envelope(rng, n, 2, 0.5, 1.0) + 0.03 * band_noise(rng, n, 800, 4000)
    return x, {"kind": "a tune whistled by a person"}


def _footsteps(rng, n):
    surface = pick(rng, ["wooden floor", "gravel", "stone"])
    rate = rng.uniform(1.5, 2.3)
    out = np.zeros(n)
    for i, start in enumerate(np.arange(rng.uniform(0.1, 0.4), n / SR - 0.1, 1 / rate)):
        m = int(0.25 * SR)
        if surface == "gravel":
            step = burst(rng, m, 0.05) * 0.6 + damped([90], [0.03], [1], m)
        elif surface == "wooden floor":
            step = damped([110, 420], [0.05, 0.02], [1, 0.4], m) + 0.15 * burst(rng, m, 0.01)
        else:
            step = damped([180, 1800], [0.02, 0.01], [1, 0.3], m) + 0.3 * burst(rng, m, 0.004)
        place(out, step * (1.0 if i % 2 else 0.8), int(start * SR))
    return out, {"surface": surface}


def _telephone(rng, n):
    style = pick(rng, ["north-american", "british"])
    if style == "british":
        cycle, on = 3.0, [(0, 0.4), (0.6, 1.0)]
        f1, f2 = 400, 450
    else:
        cycle, on = 3.0, [(0, 1.6)]
        f1, f2 = 440, 480
    pattern = [(c + a, c + b) for c in np.arange(0.1, n / SR, cycle) for a, b in on]
    ring = tone(f1, n) + tone(f2, n)
    if rng.random() < 0.5:  # an old bell phone: amplitude-modulated at 20 Hz
        ring = ring * (0.6 + 0.4 * np.sin(2 * np.pi * 20 * np.arange(n) / SR))
    return ring * gate(n, pattern), {"style": style}


def _alarm(rng, n):
    f = rng.uniform(2000, 3500)
    carrier = sox_synth(n / SR, ["square", f"{f:.1f}"])[:n]
    carrier = np.pad(carrier, (0, n - carrier.shape[0]))
    beeps = int(rng.integers(2, 5))
    pattern = [
        (c + 0.12 * i, c + 0.12 * i + 0.07)
        for c in np.arange(0.1, n / SR, 1.0)
        for i in range(beeps)
    ]
    return sox(carrier * gate(n, pattern), ["lowpass", "6000"]), {"beeps": beeps}


def _bird(rng, n):
    out = np.zeros(n)
    t0 = rng.uniform(0.0, 0.4)
    hi, lo = rng.uniform(4000, 6500), rng.uniform(2000, 3500)
    while t0 < n / SR - 0.2:
        for _ in range(int(rng.integers(2, 6))):
            m = int(rng.uniform(0.04, 0.1) * SR)
            f = np.linspace(hi, lo, m)
            chirp = tone(f, m) * np.hanning(m)
            place(out, chirp * rng.uniform(0.5, 1.0), int(t0 * SR))
            t0 += m / SR + rng.uniform(0.02, 0.06)
        t0 += rng.uniform(0.3, 1.0)
    return out, {"count": "several birds" if rng.random() < 0.5 else "a bird"}


def _clock(rng, n):
    out = np.zeros(n)
    f_tick, f_tock = rng.uniform(2500, 3500), rng.uniform(1800, 2400)
    for i, start in enumerate(np.arange(rng.uniform(0, 0.5), n / SR, 0.5)):
        m = int(0.03 * SR)
        click = damped([f_tick if i % 2 == 0 else f_tock], [0.004], [1], m) + 0.2 * burst(
            rng, m, 0.001
        )
        place(out, click, int(start * SR))
    return out, {}


def _dripping(rng, n):
    out = np.zeros(n)
    t0 = rng.uniform(0.05, 0.3)
    while t0 < n / SR:
        m = int(0.04 * SR)
        f0 = rng.uniform(700, 1400)
        drop = tone(np.linspace(f0, 2.2 * f0, m), m) * np.exp(-np.arange(m) / (0.008 * SR))
        place(out, drop * rng.uniform(0.5, 1.0), int(t0 * SR))
        t0 += rng.uniform(0.25, 0.8)
    return sox(out, ["reverb", "40"]), {}


def _car_horn(rng, n):
    f1 = rng.uniform(330, 420)
    sawtooth = (
        sox_synth(n / SR, ["sawtooth", f"{f1:.1f}"])[:n]
        + sox_synth(n / SR, ["sawtooth", f"{1.25 * f1:.1f}"])[:n]
    )
    sawtooth = np.pad(sawtooth, (0, n - sawtooth.shape[0]))
    pattern, t0 = [], rng.uniform(0.1, 0.5)
    honks = int(rng.integers(1, 4))
    for _ in range(honks):
        length = rng.uniform(0.15, 0.9)
        pattern.append((t0, t0 + length))
        t0 += length + rng.uniform(0.15, 0.4)
    return sox(sawtooth * gate(n, pattern), ["lowpass", "3000"]), {
        "honks": "once" if honks == 1 else f"{honks} times"
    }


def _typing(rng, n):
    out = np.zeros(n)
    t0 = rng.uniform(0, 0.3)
    while t0 < n / SR:
        m = int(0.02 * SR)
        click = band_noise(rng, m, 1500, 7000) * np.exp(-np.arange(m) / (0.003 * SR))
        place(out, click * rng.uniform(0.4, 1.0), int(t0 * SR))
        t0 += rng.exponential(0.12) + 0.03
        if rng.random() < 0.08:
            t0 += rng.uniform(0.3, 0.8)  # a pause between words
    return out, {}


def _glass(rng, n):
    out = np.zeros(n)
    f0 = rng.uniform(1800, 3200)
    t0 = rng.uniform(0.1, 0.6)
    for _ in range(int(rng.integers(2, 5))):
        m = int(1.0 * SR)
        ring = damped([f0, 2.32 * f0, 4.25 * f0], [0.5, 0.25, 0.1], [1, 0.4, 0.2], m)
        place(out, ring * rng.uniform(0.5, 1.0), int(t0 * SR))
        t0 += rng.uniform(0.4, 1.0)
    return out, {}


# event name → (builder, caption templates; every template contains the event name)
EVENTS: dict[str, tuple[Callable, list[str]]] = {
    "siren": (
        _siren,
        [
            "A {kind} emergency siren",
            "An ambulance siren, {kind}",
            "The {kind} siren of a police car",
        ],
    ),
    "church bell": (
        _bell,
        ["A church bell tolling {times}", "The deep ring of a church bell, struck {times}"],
    ),
    "doorbell": (_doorbell, ["A doorbell chiming ding-dong", "Someone rings the doorbell"]),
    "knocking": (
        _knocking,
        [
            "Knocking on a {surface} door, {count} knocks at a time",
            "Someone knocking on a {surface} door",
        ],
    ),
    "rain": (_rain, ["{Strength} rain falling", "The sound of {strength} rain on a roof"]),
    "wind": (_wind, ["A {strength} wind blowing", "{Strength} wind outdoors"]),
    "engine": (_engine, ["A car engine {action}", "The engine of a vehicle {action}"]),
    "clapping": (_clapping, ["Hand clapping by {who}", "{Who} clapping"]),
    "beeping": (
        _beeping,
        ["Electronic beeping at a {pitch} pitch", "A device beeping repeatedly, {pitch} pitched"],
    ),
    "thunder": (
        _thunder,
        ["A clap of {distance} thunder", "{Distance} thunder rumbling during a storm"],
    ),
    "whistle": (_whistle, ["A whistle: {kind}", "The sound of a whistle, {kind}"]),
    "footsteps": (
        _footsteps,
        ["Footsteps on {surface}", "Someone walking, footsteps on {surface}"],
    ),
    "telephone": (_telephone, ["A {style} telephone ringing", "The ring of a {style} telephone"]),
    "alarm clock": (
        _alarm,
        ["An alarm clock beeping {beeps} times in a row", "A digital alarm clock going off"],
    ),
    "bird": (_bird, ["Bird song: the chirping of {count}", "Bird chirping ({count})"]),
    "clock ticking": (_clock, ["A clock ticking", "The steady sound of a clock ticking"]),
    "water dripping": (
        _dripping,
        ["Water dripping into a sink", "Slow water dripping in a quiet room"],
    ),
    "car horn": (
        _car_horn,
        ["A car horn honking {honks}", "An impatient driver sounds the car horn {honks}"],
    ),
    "typing": (_typing, ["Typing on a computer keyboard", "Someone typing quickly"]),
    "glass clinking": (_glass, ["Glass clinking in a toast", "The clear sound of glass clinking"]),
}


def make_sound(rng: np.random.Generator, seconds: float, events: list[str] | None = None) -> Clip:
    """A `seconds`-long sound event clip; the caption names the event (and the room, if any)."""
    names = events or list(EVENTS)
    event = pick(rng, names)
    builder, templates = EVENTS[event]
    n = int(seconds * SR)
    wave, words = builder(rng, n)
    room = rng.random() < 0.25
    if room:
        wave = sox(np.asarray(wave, np.float32), ["reverb", f"{rng.uniform(40, 90):.0f}"])
    words = {**words, **{k.capitalize(): str(v).capitalize() for k, v in words.items()}}
    caption = pick(rng, templates).format(**words)
    caption = caption[0].upper() + caption[1:]
    if room:
        caption += ", in a large reverberant room"
    facts = dict(event=event, duration=n / SR)
    return Clip(fit_length(wave, n), caption + ".", "sound", facts)
