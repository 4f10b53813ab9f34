"""Loading formats: our own folders, Dasheng encoder checkpoints (Zenodo .pt, HF repos), strictness."""

import json

import pytest
import torch
from safetensors.torch import save_file

from sonotok.tokenizer import (
    AudioTokenizer,
    CheckpointError,
    ModelNotFoundError,
    SemanticEncoder,
    SemanticEncoderConfig,
    TokenizerConfig,
)

SMALL = dict(embed_dim=32, depth=2, num_heads=4)


def dasheng_original_state(encoder: SemanticEncoder) -> dict[str, torch.Tensor]:
    """Our encoder's weights under the original Dasheng key names (front-end tables included)."""
    state = {}
    for key, value in encoder.state_dict().items():
        key = key.replace("init_bn.", "init_bn.1.", 1) if key.startswith("init_bn.") else key
        key = (
            key.replace("patch_embed.", "patch_embed.proj.", 1)
            if key.startswith("patch_embed.")
            else key
        )
        state[key] = value.clone()
    state["front_end.0.spectrogram.window"] = encoder.front_end.window.clone()
    state["front_end.0.mel_scale.fb"] = encoder.front_end.fb.clone()
    return state


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(1)
    model = SemanticEncoder(SemanticEncoderConfig(**SMALL)).eval()
    model.init_bn.running_mean.uniform_(-60, -20)
    model.init_bn.running_var.uniform_(200, 400)
    return model


def _same_outputs(a: SemanticEncoder, b: SemanticEncoder, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a([x])[0], b([x])[0])


def test_tokenizer_save_load_roundtrip(tmp_path, tiny_tokenizer, tone):
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = AudioTokenizer.from_pretrained(tmp_path / "m")
    x = torch.from_numpy(tone(20000))
    assert loaded.config == tiny_tokenizer.config
    for key, value in tiny_tokenizer.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert torch.equal(loaded.encode(x), tiny_tokenizer.encode(x))
    assert torch.equal(
        loaded.decode(loaded.encode(x)), tiny_tokenizer.decode(tiny_tokenizer.encode(x))
    )


def test_zenodo_pt_checkpoint(tmp_path, encoder, tone):
    config = {
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 4,
        "patch_size": [64, 4],
        "patch_stride": [64, 4],
        "target_length": 1008,
        "lr": 3e-4,
    }  # training settings are ignored
    torch.save(
        {"model": dasheng_original_state(encoder), "config": config}, tmp_path / "dasheng_tiny.pt"
    )
    loaded = SemanticEncoder.from_pretrained(tmp_path / "dasheng_tiny.pt")
    assert loaded.config == encoder.config
    assert _same_outputs(loaded, encoder, torch.from_numpy(tone(30000)))


def test_hf_dasheng_repo_layout(tmp_path, encoder, tone):
    state = {
        f"encoder.{k}": v
        for k, v in dasheng_original_state(encoder).items()
        if not k.startswith("front_end")
    }
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "dasheng",
                "name": "dasheng-base",
                "encoder_kwargs": {**SMALL, "target_length": 1008},
            }
        )
    )
    loaded = SemanticEncoder.from_pretrained(tmp_path)
    assert loaded.config == encoder.config
    assert _same_outputs(loaded, encoder, torch.from_numpy(tone(30000)))


def test_semantic_save_load_and_new_tokenizer_on_it(tmp_path, encoder, tone):
    encoder.save_pretrained(tmp_path / "enc")
    loaded = SemanticEncoder.from_pretrained(tmp_path / "enc")
    x = torch.from_numpy(tone(30000))
    assert _same_outputs(loaded, encoder, x)
    tok = AudioTokenizer.from_semantic_encoder(loaded, TokenizerConfig.tiny())
    assert tok.latent_dim == 32
    assert torch.allclose(tok.encode(x, features="semantic"), encoder([x])[0], atol=1e-6)


def test_strict_loading_rejects_missing_unexpected_and_wrong_front_end(tmp_path, encoder):
    good = dasheng_original_state(encoder)
    config = {"embed_dim": 32, "depth": 2, "num_heads": 4}

    def load(state):
        torch.save({"model": state, "config": config}, tmp_path / "x.pt")
        return SemanticEncoder.from_pretrained(tmp_path / "x.pt")

    with pytest.raises(CheckpointError, match="missing keys.*blocks.1.mlp.fc2.bias"):
        load({k: v for k, v in good.items() if k != "blocks.1.mlp.fc2.bias"})
    with pytest.raises(CheckpointError, match="unexpected keys.*outputlayer.weight"):
        load({**good, "outputlayer.weight": torch.zeros(10, 32)})
    with pytest.raises(CheckpointError, match="front_end.fb.*different front end"):
        load({**good, "front_end.0.mel_scale.fb": good["front_end.0.mel_scale.fb"] * 2})
    with pytest.raises(
        CheckpointError, match="missing keys"
    ):  # config depth disagrees with the weights
        torch.save({"model": good, "config": {**config, "depth": 3}}, tmp_path / "y.pt")
        SemanticEncoder.from_pretrained(tmp_path / "y.pt")


def test_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        AudioTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="not a tokenizer"):
        AudioTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no such file or folder"):
        AudioTokenizer.from_pretrained(tmp_path / "missing")


def test_hub_id_offline_gives_actionable_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="hf download mispeech/dashengtokenizer"):
        AudioTokenizer.from_pretrained("mispeech/dashengtokenizer")


# ---- damaged model folders: one clear SonotokError naming the file, never a traceback ----------
def _copy_model(source: str, folder) -> dict:
    import shutil

    shutil.copytree(source, folder)
    return json.loads((folder / "config.json").read_text())


def _with_depth_six(config: dict) -> dict:
    config["semantic"]["depth"] = "six"
    return config


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: [1, 2, 3], "expected a JSON object"),
        (lambda c: None, "got NoneType None"),
        (lambda c: {**c, "colour": "red"}, "unknown config key colour"),
        (_with_depth_six, "semantic.depth: expected an integer, got str 'six'"),
        (lambda c: {"model_type": "dashengtokenizer", "depth": "six"}, "depth: expected an int"),
        (lambda c: {**c, "upsample": 0}, "upsample must be >= 1, got 0"),
    ],
)
def test_damaged_config_json_is_a_config_error_naming_file_and_key(
    tmp_path, tiny_tokenizer_dir, edit, message
):
    from sonotok.core.errors import ConfigError

    folder = tmp_path / "model"
    (folder / "config.json").write_text(json.dumps(edit(_copy_model(tiny_tokenizer_dir, folder))))
    with pytest.raises(ConfigError) as err:
        AudioTokenizer.from_pretrained(folder)
    assert message in str(err.value) and str(folder / "config.json") in str(err.value)


def test_empty_or_truncated_safetensors_is_a_checkpoint_error(tmp_path, tiny_tokenizer_dir):
    folder = tmp_path / "model"
    _copy_model(tiny_tokenizer_dir, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    for damaged in (b"", data[: len(data) // 2]):
        weights.write_bytes(damaged)
        with pytest.raises(CheckpointError, match="not a readable safetensors file"):
            AudioTokenizer.from_pretrained(folder)


def test_pickle_in_a_model_folder_is_refused_and_never_run(
    tmp_path, tiny_tokenizer_dir, plant_pickles
):
    folder = tmp_path / "model"
    _copy_model(tiny_tokenizer_dir, folder)
    (folder / "model.safetensors").unlink()
    marker = plant_pickles(folder)  # pytorch_model.bin among them: a code-running pickle
    with pytest.raises(CheckpointError, match="pytorch_model.bin: refused to load"):
        AudioTokenizer.from_pretrained(folder)
    encoder = tmp_path / "encoder.pt"
    (folder / "pytorch_model.bin").rename(encoder)
    with pytest.raises(CheckpointError, match="not a readable Dasheng .pt checkpoint"):
        SemanticEncoder.from_pretrained(encoder)
    assert not marker.exists()


@pytest.mark.parametrize(
    "config, message",
    [
        ([1], "config.json: expected a JSON object"),
        ({"model_type": "sonotok-semantic-encoder", "config": None}, "expected a JSON object"),
        ({"model_type": "sonotok-semantic-encoder", "config": {"depth": "six"}}, "depth: expected"),
        ({"model_type": "dasheng", "encoder_kwargs": {"depth": "six"}}, "depth: expected"),
        ({"model_type": "dasheng", "name": "dasheng-huge"}, "unknown Dasheng size"),
    ],
)
def test_semantic_encoder_config_errors(tmp_path, encoder, config, message):
    from sonotok.core.errors import SonotokError

    encoder.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(SonotokError, match=message):
        SemanticEncoder.from_pretrained(tmp_path)


def test_cli_reports_a_damaged_model_folder_in_one_line(tmp_path, tiny_tokenizer_dir, tone, capsys):
    import soundfile as sf

    from sonotok.cli import main

    folder = tmp_path / "model"
    _copy_model(tiny_tokenizer_dir, folder)
    (folder / "config.json").write_text("[1, 2, 3]")
    sf.write(tmp_path / "a.wav", tone(16000), 16000)
    out = tmp_path / "out"
    args = ["reconstruct", str(tmp_path / "a.wav"), "-o", str(out), "--model", str(folder)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "expected a JSON object" in err[-1]
    assert "Traceback" not in "\n".join(err) and not (out / "a.wav").exists()
