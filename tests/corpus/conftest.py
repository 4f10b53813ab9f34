"""A tiny corpus built once per session (skipped only where a synthesizer is not installed;
CI installs them from .ci/apt-packages.txt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sonotok.corpus import CorpusSpec, make_corpus
from sonotok.corpus.tools import SOUNDFONTS

TOOLS = ("espeak-ng", "flite", "fluidsynth", "sox")
TINY = dict(speech=4, music=3, sounds=4, noise=3, seconds=2.0, seed=7)


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not any(Path(p).is_file() for p in SOUNDFONTS):
        missing.append("fluid-soundfont-gm")
    if missing:
        pytest.skip(f"corpus synthesizers not installed: {', '.join(missing)}")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """DIR of `make_corpus` with 4 speech, 3 music, 4 sound and 3 noise clips of 2 s."""
    require_tools()
    out = tmp_path_factory.mktemp("corpus") / "tiny"
    make_corpus(out, CorpusSpec(**TINY), workers=2, progress=False)
    return out


@pytest.fixture(scope="session")
def corpus_dir_again(tmp_path_factory) -> Path:
    """The same flags built again, with one worker."""
    require_tools()
    out = tmp_path_factory.mktemp("corpus_again") / "tiny"
    make_corpus(out, CorpusSpec(**TINY), workers=1, progress=False)
    return out
