"""Shared fixtures: the reduced official-layout SQCodec models made by the reference package
(tests/fixtures/make_sqcodec_parity.py) and the reference's outputs on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from sonotok.tokenizer.sqcodec import OFFICIAL_CONFIGS, SQCodecConfig, SQCodecTokenizer
from sonotok.tokenizer.sqcodec.configs import config_from_toml

FIXTURE = Path(__file__).parents[2] / "fixtures" / "sqcodec_parity"
CONFIG_NAMES = list(OFFICIAL_CONFIGS)


def tiny_config(name: str) -> SQCodecConfig:
    """The reduced config the fixture's `weights/<name>.v0/` was made with."""
    network = json.loads((FIXTURE / "configs.json").read_text())[name]
    return config_from_toml(network, name, OFFICIAL_CONFIGS[name].sample_rate)


def load_tiny(name: str) -> SQCodecTokenizer:
    """The fixture's official-layout weights for `name`, through the `<folder>:<config>` name."""
    return SQCodecTokenizer.from_pretrained(f"{FIXTURE}:{name}", config=tiny_config(name))


@pytest.fixture(scope="session")
def cases() -> dict:
    return load_file(str(FIXTURE / "cases.safetensors"))


@pytest.fixture(scope="session")
def tiny6() -> SQCodecTokenizer:
    """The reduced 6kbps model (hop 45, window 4: 180-sample blocks)."""
    return load_tiny("6kbps")


@pytest.fixture(scope="session")
def tiny6_folder(tiny6, tmp_path_factory) -> Path:
    """The same weights saved in sonotok's own format."""
    folder = tmp_path_factory.mktemp("sqcodec") / "tiny6"
    tiny6.save_pretrained(folder)
    return folder
