"""Shared fixtures: the reduced official-layout UniCodec made by the reference code
(tests/fixtures/make_unicodec_parity.py) and the reference's outputs on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from sonotok.tokenizer.unicodec import UnicodecTokenizer

FIXTURE = Path(__file__).parents[2] / "fixtures" / "unicodec_parity"
OFFICIAL = FIXTURE / "official_tiny"


@pytest.fixture(scope="session")
def cases() -> dict:
    return load_file(str(FIXTURE / "cases.safetensors"))


@pytest.fixture(scope="session")
def tiny() -> UnicodecTokenizer:
    """The official tiny checkpoint loaded by our loader (domain default: speech)."""
    return UnicodecTokenizer.from_pretrained(OFFICIAL, domain="speech")


@pytest.fixture(scope="session")
def tiny_folder(tiny, tmp_path_factory) -> Path:
    """The same weights saved in sonotok's own format."""
    folder = tmp_path_factory.mktemp("unicodec") / "tiny"
    tiny.save_pretrained(folder)
    return folder
