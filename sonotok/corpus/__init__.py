"""sonotok.corpus: a captioned multi-domain audio corpus made offline from local
synthesizers (espeak-ng, flite, fluidsynth + a General MIDI soundfont, sox, numpy)."""

from .build import CorpusSpec, make_clip, make_corpus, read_clip_wave
from .clip import Clip, CorpusError

__all__ = ["Clip", "CorpusError", "CorpusSpec", "make_clip", "make_corpus", "read_clip_wave"]
