"""`sonotok train semantic` settings: every numeric value checked before any work starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonotok.core.errors import ConfigError
from sonotok.tokenizer.mae.config import SemanticTrainConfig
from sonotok.tokenizer.train.config import load_config

TINY = Path(__file__).resolve().parents[3] / "configs" / "semantic" / "tiny.yaml"


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=-1", "optim.lr must be > 0, got -1.0"),
        ("optim.lr=nan", "optim.lr: expected a finite number, got nan"),
        ("optim.weight_decay=-0.1", "optim.weight_decay must be >= 0, got -0.1"),
        ("optim.betas=[1.0, 0.95]", "optim.betas[0] must be in [0, 1), got 1.0"),
        ("model.decoder_heads=0", "model.decoder_heads must be >= 1, got 0"),
        ("model.encoder.num_heads=0", "model.encoder: num_heads must be >= 1, got 0"),
        ("model.encoder.depth=six", "model.encoder.depth: expected an integer, got str 'six'"),
        ("data.max_attempts=0", "data.max_attempts must be >= 1, got 0"),
        (
            "model.encoder.n_fft=65536",
            "data.segment_samples=20480 is too short for the encoder (n_fft 65536",
        ),
    ],
)
def test_bad_numbers_are_config_errors_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(SemanticTrainConfig, TINY, ["data.sources=[{path: a}]", override])
    assert message in str(err.value) and str(TINY) in str(err.value)


def test_check_and_training_refuse_silent_only_data_in_one_line(tmp_path, capsys):
    from sonotok.cli import main

    for i in range(2):
        sf.write(tmp_path / f"{i}.wav", np.zeros(32000, np.float32), 16000)
    args = ["train", "semantic", "--config", str(TINY), "--data", str(tmp_path)]
    args += ["-o", str(tmp_path / "run"), "--set", "train.max_steps=1"]
    assert main([*args, "--check"]) == 2
    assert (
        "none of the 2 items checked is usable (0 unreadable, 2 silent)" in capsys.readouterr().err
    )
    assert main(args) == 2  # the trainer itself: every draw silent → one line, no traceback
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: training data: 50 draws in a row") and "silent" in err[-1]
