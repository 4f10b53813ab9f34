"""Bad training settings, unusable data and damaged model folders: one clear error each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from sonotok.core.errors import CheckpointError, ConfigError, DataError, SonotokError
from sonotok.enhancement import DashengDenoiser, EnhancementPipeline
from sonotok.enhancement.config import load_config
from sonotok.enhancement.data import check_data

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "enhancement" / "tiny.yaml"
OFFICIAL = REPO / "tests" / "fixtures" / "denoiser_parity" / "official_tiny"


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=-1", "optim.lr must be > 0, got -1.0"),
        ("optim.lr=nan", "optim.lr: expected a finite number, got nan"),
        ("optim.weight_decay=-1", "optim.weight_decay must be >= 0, got -1.0"),
        ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
        ("optim.ema_decay=1", "optim.ema_decay must be in (0, 1) or null, got 1.0"),
        ("train.ema_decay=0.9", "train.ema_decay is an old key; use optim.ema_decay"),
        ("data.segment_seconds=0.01", "data.segment_seconds=0.01 is too short"),
        ("data.snr_db=[10, 0]", "data.snr_db=[10.0, 0.0]: the low end is above the high end"),
        ("data.reverb_prob=2", "data.reverb_prob must be in [0, 1], got 2.0"),
        ("model.num_heads=0", "model: num_heads must be >= 1, got 0"),
        ("model.dim=wide", "model.dim: expected an integer, got str 'wide'"),
    ],
)
def test_bad_training_settings_name_the_file_and_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(TINY, [override])
    assert message in str(err.value) and str(TINY) in str(err.value)


@pytest.fixture()
def unusable(tmp_path):
    """(silent_dir, corrupt_dir): clips with no sound, files that are not audio."""
    silent, corrupt = tmp_path / "silent", tmp_path / "corrupt"
    silent.mkdir()
    corrupt.mkdir()
    for i in range(2):
        sf.write(silent / f"{i}.wav", np.zeros(16000, np.float32), 16000)
        (corrupt / f"{i}.wav").write_text("not audio")
    return silent, corrupt


def test_sources_with_nothing_usable_are_refused_before_training(unusable, speech_dirs):
    silent, corrupt = unusable
    clean, noise = speech_dirs
    ok = check_data(load_config(TINY, [f"data.clean={clean}", f"data.noise={noise}"]).data)
    assert [(c.items, c.usable) for c in ok] == [(6, 6), (3, 3)]
    for overrides, expected in (
        ([f"data.clean={silent}", f"data.noise={noise}"], "data.clean: none of the 2"),
        ([f"data.clean={clean}", f"data.noise={corrupt}"], "data.noise: none of the 2"),
    ):
        with pytest.raises(DataError, match=expected):
            check_data(load_config(TINY, overrides).data)


def test_train_check_reports_silent_clean_speech_in_one_line(unusable, speech_dirs, capsys):
    from sonotok.cli import main

    silent, _ = unusable
    args = ["train", "enhancement", "--config", str(TINY), "--check"]
    args += ["--set", f"data.clean={silent}", "--set", f"data.noise={speech_dirs[1]}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: data source data.clean: none of the 2")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: [1, 2, 3], "expected a JSON object"),
        (lambda c: {**c, "denoiser": None}, "denoiser: expected a JSON object"),
        (lambda c: {**c, "denoiser": {**c["denoiser"], "colour": 1}}, "unknown config key colour"),
        (lambda c: {**c, "denoiser": {**c["denoiser"], "num_heads": "two"}}, "num_heads: expected"),
        (lambda c: {**c, "tokenizer": 5}, "names no tokenizer"),
    ],
)
def test_damaged_enhancement_folder_is_one_clear_error(tmp_path, tiny_pipeline_dir, edit, message):
    folder = tmp_path / "model"
    shutil.copytree(tiny_pipeline_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(config)))
    with pytest.raises(SonotokError, match=message):
        EnhancementPipeline.from_pretrained(folder)


def test_empty_denoiser_weights_are_a_checkpoint_error(tmp_path, tiny_pipeline_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_pipeline_dir, folder)
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        EnhancementPipeline.from_pretrained(folder)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: [1, 2], "no 'feature_extractor' section"),
        (lambda c: {**c, "backbone": {"init_args": [1]}}, "backbone.init_args must be a mapping"),
        (
            lambda c: {**c, "second_encoder": {"init_args": {"num_layers": "three"}}},
            "second_encoder: num_layers: expected an integer",
        ),
        (
            lambda c: {
                **c,
                "backbone": {"init_args": {**c["backbone"]["init_args"], "num_layers": 0}},
            },
            "backbone/head.num_layers must be >= 1, got 0",
        ),
    ],
)
def test_damaged_official_denoiser_config_is_one_clear_error(tmp_path, edit, message):
    folder = tmp_path / "official"
    shutil.copytree(OFFICIAL, folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    (folder / "config.yaml").write_text(yaml.safe_dump(edit(config)))
    with pytest.raises(SonotokError, match=message):
        DashengDenoiser.from_pretrained(folder)
