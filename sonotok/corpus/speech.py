"""Speech clips from the local synthesizers espeak-ng (many languages, voice variants) and
flite (English voices), at slow, normal or fast rates.

Sentences are built from subject + predicate + place phrases per language (216 sentences
each), so a corpus of thousands of clips still has varied text. The caption names the
voice, language, rate and the sentence.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonotok.core.audio import SAMPLE_RATE

from .clip import Clip, fit_length, pick
from .tools import decode, require, run

# language code → (name, subjects, predicates, places); each sentence = one of each.
PHRASES: dict[str, tuple[str, list[str], list[str], list[str]]] = {
    "en": (
        "English",
        ["My sister", "The old man", "Our teacher", "A small dog", "The neighbour", "Her friend"],
        [
            "reads a book",
            "waits for the bus",
            "drinks hot tea",
            "sings a song",
            "plays the piano",
            "cooks dinner",
        ],
        [
            "in the garden.",
            "every morning.",
            "near the station.",
            "after school.",
            "on the balcony.",
            "before the storm.",
        ],
    ),
    "de": (
        "German",
        [
            "Meine Schwester",
            "Der alte Mann",
            "Unser Lehrer",
            "Ein kleiner Hund",
            "Die Nachbarin",
            "Ihr Freund",
        ],
        [
            "liest ein Buch",
            "wartet auf den Bus",
            "trinkt heißen Tee",
            "singt ein Lied",
            "spielt Klavier",
            "kocht das Essen",
        ],
        [
            "im Garten.",
            "jeden Morgen.",
            "am Bahnhof.",
            "nach der Schule.",
            "auf dem Balkon.",
            "vor dem Gewitter.",
        ],
    ),
    "fr": (
        "French",
        [
            "Ma sœur",
            "Le vieil homme",
            "Notre professeur",
            "Un petit chien",
            "La voisine",
            "Son ami",
        ],
        [
            "lit un livre",
            "attend le bus",
            "boit du thé chaud",
            "chante une chanson",
            "joue du piano",
            "prépare le dîner",
        ],
        [
            "dans le jardin.",
            "chaque matin.",
            "près de la gare.",
            "après l'école.",
            "sur le balcon.",
            "avant l'orage.",
        ],
    ),
    "es": (
        "Spanish",
        [
            "Mi hermana",
            "El anciano",
            "Nuestro profesor",
            "Un perro pequeño",
            "La vecina",
            "Su amigo",
        ],
        [
            "lee un libro",
            "espera el autobús",
            "bebe té caliente",
            "canta una canción",
            "toca el piano",
            "prepara la cena",
        ],
        [
            "en el jardín.",
            "cada mañana.",
            "cerca de la estación.",
            "después de clase.",
            "en el balcón.",
            "antes de la tormenta.",
        ],
    ),
    "it": (
        "Italian",
        [
            "Mia sorella",
            "Il vecchio",
            "Il nostro maestro",
            "Un piccolo cane",
            "La vicina",
            "Il suo amico",
        ],
        [
            "legge un libro",
            "aspetta l'autobus",
            "beve tè caldo",
            "canta una canzone",
            "suona il pianoforte",
            "prepara la cena",
        ],
        [
            "in giardino.",
            "ogni mattina.",
            "vicino alla stazione.",
            "dopo la scuola.",
            "sul balcone.",
            "prima del temporale.",
        ],
    ),
    "pt": (
        "Portuguese",
        [
            "A minha irmã",
            "O velho",
            "O nosso professor",
            "Um cão pequeno",
            "A vizinha",
            "O amigo dela",
        ],
        [
            "lê um livro",
            "espera o autocarro",
            "bebe chá quente",
            "canta uma canção",
            "toca piano",
            "prepara o jantar",
        ],
        [
            "no jardim.",
            "todas as manhãs.",
            "perto da estação.",
            "depois da escola.",
            "na varanda.",
            "antes da tempestade.",
        ],
    ),
    "nl": (
        "Dutch",
        [
            "Mijn zus",
            "De oude man",
            "Onze leraar",
            "Een kleine hond",
            "De buurvrouw",
            "Haar vriend",
        ],
        [
            "leest een boek",
            "wacht op de bus",
            "drinkt hete thee",
            "zingt een lied",
            "speelt piano",
            "kookt het eten",
        ],
        [
            "in de tuin.",
            "elke ochtend.",
            "bij het station.",
            "na school.",
            "op het balkon.",
            "voor de storm.",
        ],
    ),
}


@dataclass(frozen=True)
class Voice:
    """A synthesizer voice: `engine` espeak-ng or flite; `name` is passed to it."""

    engine: str
    name: str
    language: str  # BCP-47-like tag, also the column value
    language_name: str
    phrases: str  # key into PHRASES
    gender: str


ESPEAK_LANGUAGES = [  # (espeak-ng voice, tag, language name, phrases)
    ("en-us", "en-us", "American English", "en"),
    ("en-gb", "en-gb", "British English", "en"),
    ("de", "de", "German", "de"),
    ("fr-fr", "fr", "French", "fr"),
    ("es", "es", "Spanish", "es"),
    ("it", "it", "Italian", "it"),
    ("pt", "pt", "Portuguese", "pt"),
    ("nl", "nl", "Dutch", "nl"),
]
# espeak-ng voice variants (espeak-ng-data/voices/!v) and their gender.
ESPEAK_VARIANTS = {
    "m1": "male",
    "m3": "male",
    "m5": "male",
    "f1": "female",
    "f3": "female",
    "f4": "female",
}
FLITE_VOICES = [  # (voice, tag, language name, gender); "kal" is 8 kHz, resampled
    ("slt", "en-us", "American English", "female"),
    ("rms", "en-us", "American English", "male"),
    ("awb", "en-gb-scotland", "Scottish English", "male"),
    ("kal16", "en-us", "American English", "male"),
    ("kal", "en-us", "American English", "male"),
]


def voices(engines: tuple[str, ...] = ("espeak-ng", "flite")) -> list[Voice]:
    """Every voice the corpus draws from (espeak-ng languages × variants, then flite)."""
    out = []
    if "espeak-ng" in engines:
        for name, tag, language_name, phrases in ESPEAK_LANGUAGES:
            for variant, gender in ESPEAK_VARIANTS.items():
                out.append(
                    Voice("espeak-ng", f"{name}+{variant}", tag, language_name, phrases, gender)
                )
    if "flite" in engines:
        for name, tag, language_name, gender in FLITE_VOICES:
            out.append(Voice("flite", name, tag, language_name, "en", gender))
    return out


# Rate classes: espeak-ng words per minute, flite duration_stretch (1 = normal).
RATES = {
    "slow": ((125, 145), (1.2, 1.35)),
    "normal": ((160, 185), (0.95, 1.05)),
    "fast": ((205, 235), (0.75, 0.85)),
}

CAPTIONS = [
    'A {gender} voice ({voice}) speaking {language_name} at a {rate} rate: "{sentence}"',
    '{Rate} {language_name} speech by the {voice} voice ({gender}) saying "{sentence}"',
    'Synthetic {language_name} speech, {gender} voice {voice}, {rate} rate: "{sentence}"',
    'The {voice} voice reads this {language_name} sentence at a {rate} pace: "{sentence}"',
]


def sentence(rng: np.random.Generator, phrases: str) -> str:
    _, subjects, predicates, places = PHRASES[phrases]
    return f"{pick(rng, subjects)} {pick(rng, predicates)} {pick(rng, places)}"


def synthesize(voice: Voice, text: str, rate: str, rng: np.random.Generator) -> np.ndarray:
    """One utterance as (N,) float32 at 16 kHz."""
    wpm_range, stretch_range = RATES[rate]
    if voice.engine == "espeak-ng":
        wpm = int(rng.integers(wpm_range[0], wpm_range[1] + 1))
        pitch = int(rng.integers(35, 66))
        data = run(
            [
                require("espeak-ng"),
                "-v",
                voice.name,
                "-s",
                str(wpm),
                "-p",
                str(pitch),
                "--stdout",
                text,
            ]
        )
        return decode(data)
    stretch = float(rng.uniform(*stretch_range))
    with tempfile.TemporaryDirectory(prefix="sonotok-flite-") as tmp:
        out = Path(tmp) / "speech.wav"
        run(
            [
                require("flite"),
                "-voice",
                voice.name,
                "--setf",
                f"duration_stretch={stretch:.3f}",
                "-t",
                text,
                "-o",
                str(out),
            ]
        )
        return decode(out)


def trim_silence(wave: np.ndarray, threshold_db: float = -50.0) -> np.ndarray:
    """Drop leading/trailing samples quieter than `threshold_db` relative to the peak."""
    level = np.abs(wave)
    loud = np.flatnonzero(level > level.max() * 10 ** (threshold_db / 20))
    return wave[loud[0] : loud[-1] + 1] if loud.size else wave


def make_speech(rng: np.random.Generator, seconds: float, pool: list[Voice] | None = None) -> Clip:
    """A clip of one synthesized sentence, at most `seconds` long (a shorter sentence or a
    faster rate is drawn when it would not fit), with 0.1–0.3 s of silence around it."""
    pool = pool or voices()
    voice = pick(rng, pool)
    rate = pick(rng, list(RATES))
    lead = int(rng.uniform(0.1, 0.3) * SAMPLE_RATE)
    limit = int(seconds * SAMPLE_RATE) - 2 * lead
    for attempt in range(6):
        text = sentence(rng, voice.phrases)
        wave = trim_silence(synthesize(voice, text, rate, rng))
        if wave.shape[0] <= limit:
            break
        if attempt >= 2:
            rate = "fast"
    wave = np.concatenate([np.zeros(lead, np.float32), fit_length(wave, min(limit, wave.shape[0]))])
    wave = np.pad(wave, (0, lead))
    facts = dict(
        voice=f"{voice.engine}:{voice.name}",
        language=voice.language,
        rate=rate,
        sentence=text,
        duration=wave.shape[0] / SAMPLE_RATE,
    )
    words = dict(
        gender=voice.gender,
        voice=facts["voice"],
        language_name=voice.language_name,
        rate=rate,
        Rate=rate.capitalize(),
        sentence=text,
    )
    return Clip(wave, pick(rng, CAPTIONS).format(**words), "speech", facts)
