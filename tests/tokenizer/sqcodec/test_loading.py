"""Loading: the official per-module layout for every config, strict key checks, the names
(`zhai-lw/SQCodec:<config>`, aliases, `<folder>:<config>`) and sonotok folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from sonotok.core.errors import CheckpointError, ConfigError, ModelNotFoundError
from sonotok.tokenizer.interface import load_tokenizer
from sonotok.tokenizer.sqcodec import SQCodecTokenizer, loading
from sonotok.tokenizer.sqcodec.model import MODULES, SQCodecModel

from .conftest import CONFIG_NAMES, FIXTURE, tiny_config


def write_official(root: Path, name: str, seed: int = 0) -> SQCodecModel:
    """Random reduced weights for `name` in the hub layout root/weights/<name>.v0/*.pt."""
    torch.manual_seed(seed)
    model = SQCodecModel(tiny_config(name))
    folder = root / "weights" / f"{name}.v0"
    folder.mkdir(parents=True)
    for module in MODULES:
        torch.save(getattr(model, module).state_dict(), folder / f"{module}.pt")
    return model.eval()


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_official_layout_loads_every_config(name, tmp_path):
    made = write_official(tmp_path, name, seed=CONFIG_NAMES.index(name))
    loaded = SQCodecTokenizer.from_pretrained(f"{tmp_path}:{name}", config=tiny_config(name))
    for key, value in made.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert loaded.describe()["config"] == name and not loaded.training


def test_a_release_folder_named_like_the_reference_cache_loads(tmp_path):
    write_official(tmp_path, "3kbps")
    folder = tmp_path / "weights" / "3kbps.v0"
    assert SQCodecTokenizer.claims(str(folder))
    model = SQCodecTokenizer.from_pretrained(folder, config=tiny_config("3kbps"))
    assert model.config.name == "3kbps"


def _copy(tmp_path: Path, name: str = "6kbps") -> Path:
    folder = tmp_path / "weights" / f"{name}.v0"
    shutil.copytree(FIXTURE / "weights" / f"{name}.v0", folder)
    return folder


def test_missing_and_unexpected_keys_name_the_file_and_keys(tmp_path):
    folder = _copy(tmp_path)
    state = torch.load(folder / "quantizer.pt", weights_only=True)
    state["extra.weight"] = state.pop("project_in.bias")
    torch.save(state, folder / "quantizer.pt")
    with pytest.raises(CheckpointError, match=r"quantizer\.pt.*project_in\.bias.*extra\.weight"):
        SQCodecTokenizer.from_pretrained(f"{tmp_path}:6kbps", config=tiny_config("6kbps"))


def test_the_official_config_refuses_reduced_weights(tmp_path):
    _copy(tmp_path)
    with pytest.raises(CheckpointError, match="encoder.pt"):
        SQCodecTokenizer.from_pretrained(f"{tmp_path}:6kbps")  # full-size config


def test_a_missing_module_file_is_named(tmp_path):
    folder = _copy(tmp_path)
    (folder / "en_decoder.pt").unlink()
    with pytest.raises(ModelNotFoundError, match="en_decoder.pt is missing"):
        SQCodecTokenizer.from_pretrained(f"{tmp_path}:6kbps", config=tiny_config("6kbps"))


def test_a_pickled_object_is_refused_not_executed(tmp_path):
    folder = _copy(tmp_path)
    torch.save({"weights": [1, 2]}, folder / "encoder.pt")  # not a dict of tensors
    with pytest.raises(CheckpointError, match="encoder.pt"):
        SQCodecTokenizer.from_pretrained(f"{tmp_path}:6kbps", config=tiny_config("6kbps"))


@pytest.mark.parametrize(
    "name, config",
    [
        ("zhai-lw/SQCodec:6kbps", "6kbps"),
        ("zhai-lw/SQCodec:12kbps_24khz", "12kbps_24khz"),
        ("zhai-lw/SQCodec", "6kbps"),
        ("sqcodec", "6kbps"),
        ("sqcodec-6kbps", "6kbps"),
        ("sqcodec-0.75kbps", "0k75bps"),
        ("SQCodec-1k5bps", "1k5bps"),
        ("sqcodec-12kbps-24khz", "12kbps_24khz"),
        ("sqcodec-24kbps_24khz", "24kbps_24khz"),
    ],
)
def test_names_resolve_to_the_hub_repository_and_config(name, config):
    assert SQCodecTokenizer.claims(name)
    assert loading.parse_name(name) == ("zhai-lw/SQCodec", config)


def test_other_names_are_not_claimed(tmp_path):
    for name in ["facebook/encodec_24khz", "sqcodec-7kbps-x", str(tmp_path), "unicodec"]:
        assert not SQCodecTokenizer.claims(name), name


@pytest.mark.parametrize("name", ["zhai-lw/SQCodec:7kbps", "sqcodec-6kbps:foo"])
def test_a_wrong_config_is_one_clear_error(name, tmp_path):
    with pytest.raises(ConfigError, match="no config"):
        load_tokenizer(name.replace("sqcodec-6kbps", str(tmp_path)))


def test_load_tokenizer_fetches_only_the_configs_files(monkeypatch, tmp_path):
    write_official(tmp_path, "6kbps")
    calls = []

    def fake_resolve(name, allow_patterns=None, **options):
        calls.append((str(name), allow_patterns))
        return tmp_path

    monkeypatch.setattr(loading, "resolve", fake_resolve)
    monkeypatch.setattr(loading, "official_config", lambda name: tiny_config(name))
    for name in ("zhai-lw/SQCodec:6kbps", "sqcodec-6kbps"):
        model = load_tokenizer(name)
        assert isinstance(model, SQCodecTokenizer) and model.config.name == "6kbps"
    assert calls == [("zhai-lw/SQCodec", ["weights/6kbps.v0/*.pt"])] * 2


def test_offline_hub_name_is_model_not_found(empty_hub_cache):
    with pytest.raises(ModelNotFoundError, match="zhai-lw/SQCodec"):
        load_tokenizer("sqcodec-6kbps", local_files_only=True)


def test_save_pretrained_round_trips_through_load_tokenizer(tiny6, tiny6_folder, tone):
    config = (tiny6_folder / "config.json").read_text()
    assert '"model_type": "sqcodec"' in config
    assert (tiny6_folder / "model.safetensors").is_file()
    again = load_tokenizer(tiny6_folder)
    assert isinstance(again, SQCodecTokenizer) and again.config == tiny6.config
    wave = torch.from_numpy(tone(700))
    assert torch.equal(again.encode_codes(wave), tiny6.encode_codes(wave))
