"""Training configs: YAML + --set overrides, checked before any work starts."""

import pytest

from sonotok.cli.train_tokenizer import main
from sonotok.tokenizer import ConfigError
from sonotok.tokenizer.train import TokenizerTrainConfig, apply_overrides, dump_yaml, load_config


def test_shipped_configs_load(tiny_yaml):
    paper = load_config(TokenizerTrainConfig, tiny_yaml.parent / "paper.yaml")
    assert paper.loss.semantic == paper.loss.mel == 45.0
    assert (
        paper.optim.betas == (0.8, 0.9)
        and paper.optim.lr == 5e-4
        and paper.optim.min_lr_ratio == 0.1
    )
    assert paper.train.batch_size == 256 and paper.discriminators.mfd_hops == [128, 256, 512]
    assert [s.weight for s in paper.data.sources] == [21, 21, 40, 10, 26]
    tiny = load_config(TokenizerTrainConfig, tiny_yaml, ["data.sources=[{path: x}]"])
    assert tiny.model.architecture == "tiny" and tiny.data.sources[0].path == "x"


def test_overrides_reach_nested_keys_and_list_items(tiny_yaml):
    config = load_config(
        TokenizerTrainConfig,
        tiny_yaml,
        [
            "data.sources=[{path: a}, {path: b, weight: 3}]",
            "data.sources.1.weight=5",
            "optim.betas=[0.5, 0.6]",
        ],
    )
    assert [s.weight for s in config.data.sources] == [1.0, 5.0]
    assert config.optim.betas == (0.5, 0.6)
    unquoted = load_config(
        TokenizerTrainConfig, tiny_yaml, ["data.sources=[{path: a}]", "train.mixed_precision=no"]
    )
    assert unquoted.train.mixed_precision == "no"  # YAML's `no` is a boolean
    exponent = load_config(
        TokenizerTrainConfig, tiny_yaml, ["data.sources=[{path: a}]", "optim.lr=1e-4"]
    )
    assert exponent.optim.lr == 1e-4  # YAML 1.1 reads `1e-4` as a string
    again = load_config(TokenizerTrainConfig, None, ["data.sources=[{path: a}]"])
    assert again.train.batch_size == 256  # defaults are the paper's
    assert "betas:\n  - 0.5" in dump_yaml(config)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "train.batchsize=4",
            "unknown config key train.batchsize; valid keys under train: output_dir",
        ),
        ("train.batch_size=four", "train.batch_size: expected an integer, got str 'four'"),
        ("optim.lr=true", "optim.lr: expected a number, got bool True"),
        ("optim.lr=fast", "optim.lr: expected a number, got str 'fast'"),
        ("model.architecture=huge", "model.architecture: 'huge' is not one of ['paper', 'tiny']"),
        ("data.sources.0.kind=folder", "unknown config key data.sources[0].kind"),
        ("data.segment_samples=1000", "segment_samples=1000 must be a positive multiple of 640"),
        ("discriminators.mfd=0", "all discriminator weights are 0"),
        ("nonsense", "expected KEY=VALUE"),
        ("optim.lr=-1", "optim.lr must be > 0, got -1.0"),
        ("optim.lr=nan", "optim.lr: expected a finite number, got nan"),
        ("optim.lr=.inf", "optim.lr: expected a finite number, got inf"),
        ("optim.betas=[0.8, 1.5]", "optim.betas[1] must be in [0, 1), got 1.5"),
        ("optim.min_lr_ratio=2", "optim.min_lr_ratio must be in [0, 1], got 2.0"),
        ("loss.mel=-45", "loss.mel must be >= 0, got -45.0"),
        ("discriminators.mfd_hops=[128, 0]", "discriminators.mfd_hops[1] must be >= 1, got 0"),
        ("data.silence_db=nan", "data.silence_db: expected a finite number, got nan"),
        ("train.seed=-1", "train.seed must be >= 0, got -1"),
        (
            "data.segment_samples=640",
            "data.segment_samples=640 is too short for discriminators.mfd_hops (n_fft = 4 × hop)"
            " = 2048: a centred STFT needs at least 1025 samples; use data.segment_samples=1280",
        ),
    ],
)
def test_config_errors_name_the_key(tiny_yaml, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(TokenizerTrainConfig, tiny_yaml, ["data.sources=[{path: a}]", override])
    assert message in str(err.value)
    if override != "nonsense":  # a malformed --set is not the file's fault
        assert str(tiny_yaml) in str(err.value)


def test_apply_overrides_rejects_missing_list_item():
    with pytest.raises(ConfigError, match="no list item 3"):
        apply_overrides({"a": [1]}, ["a.3=2"])


def test_cli_reports_config_errors_before_any_work(tmp_path, tiny_yaml, capsys):
    out = tmp_path / "never"
    code = main(
        [
            "--config",
            str(tiny_yaml),
            "--set",
            f"train.output_dir={out}",
            "--set",
            "train.max_step=3",
            "--set",
            "data.sources=[{path: a}]",
        ]
    )
    assert code == 2
    assert "unknown config key train.max_step" in capsys.readouterr().err
    code = main(
        [
            "--config",
            str(tiny_yaml),
            "--set",
            f"train.output_dir={out}",
            "--set",
            f"data.sources=[{{path: {tmp_path / 'missing'}}}]",
        ]
    )
    assert code == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    assert not out.exists()


def test_cli_check_only(tiny_yaml, audio_folder, capsys):
    assert (
        main(
            [
                "--config",
                str(tiny_yaml),
                "--check",
                "--set",
                f"data.sources=[{{path: {audio_folder}}}]",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "config OK; data sources hold [8] items" in out
    assert "of 8 checked, 7 usable, 1 unreadable, 0 silent" in out


@pytest.mark.parametrize("content", ["corrupt", "silent"])
def test_cli_check_refuses_sources_with_nothing_usable(tiny_yaml, tmp_path, capsys, content):
    import numpy as np
    import soundfile as sf

    for i in range(3):
        if content == "corrupt":
            (tmp_path / f"{i}.wav").write_bytes(b"RIFF not really a wave file")
        else:
            sf.write(tmp_path / f"{i}.wav", np.zeros(16000, np.float32), 16000)
    args = ["--config", str(tiny_yaml), "--check", "--set", f"data.sources=[{{path: {tmp_path}}}]"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "config OK" not in captured.out
    expected = "3 unreadable, 0 silent" if content == "corrupt" else "0 unreadable, 3 silent"
    assert f"none of the 3 items checked is usable ({expected})" in captured.err


def test_register_adds_train_tokenizer(capsys):
    import argparse

    from sonotok.cli.train_tokenizer import register

    parser = argparse.ArgumentParser(prog="sonotok")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["train", "tokenizer", "--config", "x.yaml", "--set", "a=1", "--resume"]
    )
    assert args.config == "x.yaml" and args.overrides == ["a=1"] and args.resume == "latest"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "tokenizer", "--help"])
    assert "45·L_sem + 45·L_mel" in capsys.readouterr().out


def test_decoder_overrides_shape_a_new_tokenizer(tiny_yaml, tmp_path, tiny_tokenizer):
    from sonotok.tokenizer.train.trainer import build_tokenizer

    tiny_tokenizer.semantic.save_pretrained(tmp_path / "encoder")
    mini = load_config(
        TokenizerTrainConfig, tiny_yaml.parent / "mini.yaml", ["data.sources=[{path: x}]"]
    )
    assert mini.model.decoder == {"dim": 384, "intermediate_dim": 1152, "num_layers": 8}
    config = load_config(
        TokenizerTrainConfig,
        tiny_yaml,
        [
            "data.sources=[{path: x}]",
            f"model.semantic_encoder={tmp_path / 'encoder'}",
            "model.decoder={dim: 48, num_layers: 3}",
        ],
    )
    model = build_tokenizer(config.model)
    assert model.config.decoder.dim == 48 and model.config.decoder.num_layers == 3
    assert model.config.decoder.input_dim == tiny_tokenizer.latent_dim  # follows the encoder
    assert len(model.decoder.backbone.convnext) == 3
    with pytest.raises(ConfigError, match=r"model.decoder: unknown keys \['width'\]"):
        load_config(
            TokenizerTrainConfig,
            tiny_yaml,
            ["data.sources=[{path: x}]", "model.decoder={width: 3}"],
        )
    with pytest.raises(ConfigError, match="samples per latent frame differ"):
        build_tokenizer(
            load_config(
                TokenizerTrainConfig,
                tiny_yaml,
                ["data.sources=[{path: x}]", "model.decoder={hop_length: 100}"],
            ).model
        )
