"""Bad training settings and damaged model folders: one GenerationError naming the file and key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sonotok.generation.audiogen import DashengAudioGen, is_official_folder
from sonotok.generation.config import load_config
from sonotok.generation.dit import DiT, DiTConfig
from sonotok.generation.hub import GenerationError
from sonotok.generation.pipeline import TextToAudioPipeline

TINY = Path(__file__).resolve().parents[2] / "configs" / "generation" / "tiny.yaml"
OFFICIAL = Path(__file__).parent / "fixtures" / "dasheng_audiogen_tiny"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=-1", "train.lr must be > 0, got -1.0"),
        ("train.lr=nan", "train.lr: expected a finite number, got nan"),
        ("train.lr=.inf", "train.lr: expected a finite number, got inf"),
        ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
        ("train.ema_decay=1.5", "train.ema_decay must be in [0, 1), got 1.5"),
        ("train.mixed_precision=fp8", "train.mixed_precision='fp8'"),
        ("model.depth=six", "model.depth: expected an integer, got str 'six'"),
        ("model.num_heads=0", "model: num_heads must be >= 1, got 0"),
        ("objective.cond_dropout=2", "objective.cond_dropout must be in [0, 1], got 2.0"),
        ("data.latent_std=0", "data.latent_std must be > 0"),
        ("data.latent_mean=often", "data.latent_mean='often': give a number or 'auto'"),
    ],
)
def test_bad_training_settings_name_the_file_and_key(override, message):
    with pytest.raises(GenerationError) as err:
        load_config(TINY, [override])
    assert message in str(err.value) and str(TINY) in str(err.value)


def test_yaml_strings_still_read_as_numbers():
    config = load_config(TINY, ["train.lr=3e-4", "data.latent_mean=auto"])
    assert config.train.lr == 3e-4 and config.data.latent_mean == "auto"


def _dit_folder(tmp_path) -> Path:
    torch.manual_seed(0)
    DiT(DiTConfig.tiny(latent_dim=8, context_dim=12)).save_pretrained(tmp_path / "dit")
    return tmp_path / "dit"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: [1, 2, 3], "expected a JSON object of DiTConfig settings, got list"),
        (lambda c: None, "got NoneType None"),
        (lambda c: {**c, "colour": 1}, "unknown config key colour"),
        (lambda c: {**c, "depth": "six"}, "depth: expected an integer, got str 'six'"),
        (lambda c: {**c, "num_heads": 0}, "num_heads must be >= 1, got 0"),
        (lambda c: {**c, "latent_dim": 9}, "weights do not match config.json"),
    ],
)
def test_damaged_dit_config_is_one_generation_error(tmp_path, edit, message):
    folder = _dit_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(config)))
    with pytest.raises(GenerationError, match=message) as err:
        DiT.from_pretrained(folder)
    assert str(folder) in str(err.value)


def test_empty_dit_weights_are_a_checkpoint_error(tmp_path):
    from sonotok.core.errors import CheckpointError

    folder = _dit_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        DiT.from_pretrained(folder)


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ([1, 2, 3], "pipeline.json: expected a JSON object"),
        ({"text_max_length": "long"}, "text_max_length: expected an integer"),
        ({"latent_std": 0}, "latent_std, frame_rate and sample_rate must be > 0"),
        ({"latent_std": float("nan")}, "latent_std: expected a finite number, got nan"),
    ],
)
def test_damaged_pipeline_json_is_one_generation_error(tmp_path, pipeline, message):
    (tmp_path / "pipeline.json").write_text(json.dumps(pipeline))
    with pytest.raises(GenerationError, match=message):
        TextToAudioPipeline.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: [1, 2, 3], "model_type 'list' is not 'dasheng_audiogen'"),
        (lambda c: {**c, "dit_depth": "six"}, "dit_depth: expected an integer, got str 'six'"),
        (lambda c: {**c, "dit_num_heads": 0}, "dit_num_heads must be >= 1, got 0"),
    ],
)
def test_damaged_official_audiogen_config_is_one_generation_error(tmp_path, edit, message):
    folder = tmp_path / "official"
    shutil.copytree(OFFICIAL, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(config)))
    assert not is_official_folder(folder) or isinstance(edit(config), dict)
    with pytest.raises(GenerationError, match=message):
        DashengAudioGen.from_pretrained(folder)
