"""The local programs the corpus is made with (espeak-ng, flite, fluidsynth, sox).

Each call runs one program on bytes in memory or in a private temporary folder and returns
16 kHz mono float32 audio. A missing program raises `CorpusError` naming the Debian package
to install (see .ci/apt-packages.txt), before any work starts.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from sonotok.core.audio import SAMPLE_RATE, resample

from .clip import CorpusError

# program → Debian package that provides it
PACKAGES = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "fluidsynth": "fluidsynth",
    "sox": "sox",
}
# General MIDI soundfonts, first found wins (Debian's fluid-soundfont-gm, then alternatives).
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


def require(program: str) -> str:
    """Absolute path of `program`, or CorpusError with the install command."""
    path = shutil.which(program)
    if path is None:
        package = PACKAGES.get(program, program)
        raise CorpusError(
            f"{program} is not installed; install it (Debian/Ubuntu: apt-get install {package}) "
            "or leave out the domain that needs it (e.g. --music 0)"
        )
    return path


def soundfont(path: str | None = None) -> str:
    """The General MIDI soundfont to render music with."""
    if path is not None:
        if not Path(path).is_file():
            raise CorpusError(f"{path}: no such soundfont file; pass a .sf2 General MIDI soundfont")
        return str(path)
    for candidate in SOUNDFONTS:
        if Path(candidate).is_file():
            return candidate
    raise CorpusError(
        "no General MIDI soundfont found; install one (Debian/Ubuntu: apt-get install "
        "fluid-soundfont-gm) or pass --soundfont FILE.sf2"
    )


def run(command: list[str], stdin: bytes | None = None) -> bytes:
    """Run a program and return its stdout; CorpusError with its stderr if it fails."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        require(command[0])
        raise
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise CorpusError(
            f"{' '.join(command[:3])} ... failed (exit {done.returncode}): {' '.join(message[-2:])}"
        )
    return done.stdout


def decode(data: bytes | str | Path) -> np.ndarray:
    """WAV bytes or file → (N,) float32 mono at 16 kHz."""
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    wave, rate = sf.read(source, dtype="float32", always_2d=True)
    return resample(wave.mean(axis=1), rate, SAMPLE_RATE)


def sox(wave: np.ndarray, effects: list[str]) -> np.ndarray:
    """Apply a sox effects chain to a 16 kHz mono wave; the output is cut to the input length.

    `-R` makes sox repeatable (fixed dither / random seeds), so equal inputs give equal output.
    """
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "floating-point", "-b", "32", "-c", "1"]
    out = run(
        [require("sox"), "-R", "-q", *raw, "-", *raw, "-", *effects],
        stdin=np.ascontiguousarray(wave, dtype=np.float32).tobytes(),
    )
    result = np.frombuffer(out, dtype=np.float32).copy()
    return result[: wave.shape[0]] if result.shape[0] >= wave.shape[0] else result


def sox_synth(seconds: float, synth: list[str], effects: list[str] | None = None) -> np.ndarray:
    """Audio made by sox's `synth` effect (e.g. ["sine", "440"]) plus optional effects."""
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "floating-point", "-b", "32", "-c", "1"]
    out = run(
        [
            require("sox"),
            "-R",
            "-q",
            "-n",
            *raw,
            "-",
            "synth",
            f"{seconds:.4f}",
            *synth,
            *(effects or []),
        ]
    )
    return np.frombuffer(out, dtype=np.float32).copy()
