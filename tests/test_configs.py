"""Every shipped recipe config loads with its recipe's typed config (one YAML layout)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sonotok.core.config import load_yaml_config
from sonotok.enhancement.config import EnhancementTrainConfig
from sonotok.generation.config import GenerationTrainConfig
from sonotok.tokenizer.mae.config import SemanticTrainConfig
from sonotok.tokenizer.semanticodec.train_decoder import DecoderTrainConfig
from sonotok.tokenizer.train import TokenizerTrainConfig
from sonotok.tokenizer.train.codec_recipe import CodecTrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = {
    "tokenizer": TokenizerTrainConfig,
    "semantic": SemanticTrainConfig,
    "generation": GenerationTrainConfig,
    "enhancement": EnhancementTrainConfig,
    "codec": CodecTrainConfig,
    "semanticodec": DecoderTrainConfig,
}
# Settings a real run supplies on the command line (data the configs leave to the user).
REQUIRED = {
    r: ["data.sources=[{path: my_wavs/}]"]
    for r in ("semantic", "tokenizer", "codec", "semanticodec")
}
# The generic codec smoke config names no family: its header says to pass one.
PER_FILE = {"codec/tiny.yaml": ["model.family=sqcodec"]}


@pytest.mark.parametrize(
    "path", sorted(p for r in RECIPES for p in (CONFIGS / r).glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_recipe_config_loads_in_the_one_layout(path):
    recipe = path.parent.name
    extra = PER_FILE.get(f"{recipe}/{path.name}", [])
    config = load_yaml_config(RECIPES[recipe], path, REQUIRED.get(recipe, []) + extra)
    raw = yaml.safe_load(path.read_text())
    assert {"train", "optim"} <= set(raw), f"{path}: every recipe has train: and optim: sections"
    assert config.train.max_steps >= 1 and config.optim.lr > 0
