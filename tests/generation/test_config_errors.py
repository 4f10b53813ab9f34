"""Bad training settings and damaged model folders: one SonotokError naming the file and key
(GenerationError for settings; the core's ConfigError / CheckpointError for damaged files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sonotok.core.errors import CheckpointError, ConfigError
from sonotok.generation.audiogen import DashengAudioGen, is_official_folder
from sonotok.generation.config import load_config
from sonotok.generation.dit import DiT, DiTConfig
from sonotok.generation.errors import GenerationError
from sonotok.generation.pipeline import TextToAudioPipeline

TINY = Path(__file__).resolve().parents[2] / "configs" / "generation" / "tiny.yaml"
OFFICIAL = Path(__file__).parent / "fixtures" / "dasheng_audiogen_tiny"


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=-1", "optim.lr must be > 0, got -1.0"),
        ("optim.lr=nan", "optim.lr: expected a finite number, got nan"),
        ("optim.lr=.inf", "optim.lr: expected a finite number, got inf"),
        ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
        ("optim.ema_decay=1.5", "optim.ema_decay must be in (0, 1) or null, got 1.5"),
        ("optim.schedule=linear", "optim.schedule: 'linear' is not one of ['cosine', 'constant']"),
        ("train.mixed_precision=fp8", "train.mixed_precision: 'fp8' is not one of"),
        ("model.depth=six", "model.depth: expected an integer, got str 'six'"),
        ("model.num_heads=0", "model: num_heads must be >= 1, got 0"),
        ("objective.cond_dropout=2", "objective.cond_dropout must be in [0, 1], got 2.0"),
        ("data.latent_std=0", "data.latent_std must be > 0"),
        ("data.latent_mean=often", "data.latent_mean='often': give a number or 'auto'"),
        ("train.lr=1e-4", "train.lr is an old key; use optim.lr"),
        ("train.resume=none", "train.resume is an old key; use the --resume option"),
    ],
)
def test_bad_training_settings_name_the_file_and_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(TINY, [override])
    assert message in str(err.value) and str(TINY) in str(err.value)


def test_yaml_strings_still_read_as_numbers():
    config = load_config(TINY, ["optim.lr=3e-4", "data.latent_mean=auto"])
    assert config.optim.lr == 3e-4 and config.data.latent_mean == "auto"


def _dit_folder(tmp_path) -> Path:
    torch.manual_seed(0)
    DiT(DiTConfig.tiny(latent_dim=8, context_dim=12)).save_pretrained(tmp_path / "dit")
    return tmp_path / "dit"


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda c: [1, 2, 3], ConfigError, "expected a JSON object .*, got list"),
        (lambda c: None, ConfigError, "got NoneType None"),
        (lambda c: {**c, "colour": 1}, GenerationError, "unknown config key colour"),
        (lambda c: {**c, "depth": "six"}, GenerationError, "depth: expected an integer, got str"),
        (lambda c: {**c, "num_heads": 0}, GenerationError, "num_heads must be >= 1, got 0"),
        (lambda c: {**c, "model_type": "vocos"}, GenerationError, "'vocos' is not a sonotok DiT"),
        (lambda c: {**c, "latent_dim": 9}, CheckpointError, "proj_in.weight: file .32, 8."),
    ],
)
def test_damaged_dit_config_is_one_clear_error(tmp_path, edit, error, message):
    folder = _dit_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(config)))
    with pytest.raises(error, match=message) as err:
        DiT.from_pretrained(folder)
    assert str(folder) in str(err.value)


def test_empty_dit_weights_are_a_checkpoint_error(tmp_path):
    folder = _dit_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        DiT.from_pretrained(folder)


@pytest.mark.parametrize(
    "pipeline, error, message",
    [
        ([1, 2, 3], ConfigError, "pipeline.json: expected a JSON object"),
        ({"text_max_length": "long"}, GenerationError, "text_max_length: expected an integer"),
        ({"latent_std": 0}, GenerationError, "latent_std, frame_rate and sample_rate must be > 0"),
        ({"latent_std": float("nan")}, GenerationError, "latent_std: expected a finite number"),
    ],
)
def test_damaged_pipeline_json_is_one_clear_error(tmp_path, pipeline, error, message):
    (tmp_path / "pipeline.json").write_text(json.dumps(pipeline))
    with pytest.raises(error, match=message):
        TextToAudioPipeline.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda c: [1, 2, 3], ConfigError, "config.json: expected a JSON object .*, got list"),
        (lambda c: {**c, "model_type": "x"}, GenerationError, "'x' is not 'dasheng_audiogen'"),
        (lambda c: {**c, "dit_depth": "six"}, GenerationError, "dit_depth: expected an integer"),
        (lambda c: {**c, "dit_num_heads": 0}, GenerationError, "dit_num_heads must be >= 1"),
    ],
)
def test_damaged_official_audiogen_config_is_one_clear_error(tmp_path, edit, error, message):
    folder = tmp_path / "official"
    shutil.copytree(OFFICIAL, folder)
    data = edit(json.loads((folder / "config.json").read_text()))
    (folder / "config.json").write_text(json.dumps(data))
    official = isinstance(data, dict) and data["model_type"] == "dasheng_audiogen"
    assert is_official_folder(folder) == official
    with pytest.raises(error, match=message):
        DashengAudioGen.from_pretrained(folder)
