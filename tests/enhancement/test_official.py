"""Parity with the reference dasheng-denoiser implementation.

The fixture (tests/fixtures/denoiser_parity/, made by make_denoiser_parity.py with the
reference code, dasheng, vocos and torchaudio in a separate environment) holds a reduced
model in the official layout with random weights, inputs, and the reference's outputs.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from sonotok.enhancement import DashengDenoiser, EnhancementPipeline
from sonotok.enhancement.official import OFFICIAL_DENOISER_KEYS
from sonotok.tokenizer import CheckpointError
from sonotok.tokenizer.checkpoints import rename_keys

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "denoiser_parity"
TOL = 1e-4


@pytest.fixture(scope="module")
def cases():
    return load_file(str(FIXTURE / "cases.safetensors"))


@pytest.fixture(scope="module")
def model():
    return DashengDenoiser.from_pretrained(FIXTURE / "official_tiny")


def test_official_layout_loads_strictly(model):
    official = load_file(str(FIXTURE / "official_tiny" / "model.safetensors"))
    mapped = rename_keys(official, OFFICIAL_DENOISER_KEYS)
    ours = model.state_dict()
    assert {k for k in mapped if k not in ours} == {
        "encoder.front_end.window",
        "encoder.front_end.fb",
        "vocoder.head.istft.window",
    }
    for key, value in ours.items():
        assert torch.equal(value, mapped[key]), key
    assert model.denoiser.config.num_layers == 3 and model.vocoder.config.hop_length == 640


@pytest.mark.parametrize("name", ["short", "long"])
def test_stages_and_output_match_the_reference(model, cases, name):
    wave = cases[f"{name}.input"]
    feats = model.encode_latents([wave])[0]
    assert (feats - cases[f"{name}.features"]).abs().max() < TOL
    denoised = model.denoise(cases[f"{name}.features"][None])[0]
    assert (denoised - cases[f"{name}.denoised"]).abs().max() < TOL
    out = model(wave)
    assert out.shape == cases[f"{name}.output"].shape
    assert (out - cases[f"{name}.output"]).abs().max() < TOL


def test_pipeline_runs_the_official_model(cases):
    pipe = EnhancementPipeline.from_pretrained(FIXTURE / "official_tiny", chunk_seconds=None)
    x, ref = cases["short.input"].numpy(), cases["short.output"].numpy()
    y = pipe.enhance(x, 16000)
    assert y.shape == x.shape
    assert np.abs(y[: ref.shape[0]] - ref).max() < TOL and not y[ref.shape[0] :].any()
    stereo48k = pipe.enhance(np.stack([x, x], axis=1).repeat(3, axis=0), 48000)
    assert stereo48k.shape == (3 * x.shape[0], 2)


def test_the_pt_dump_loads_the_same(tmp_path, model, cases):
    config = yaml.safe_load((FIXTURE / "official_tiny" / "config.yaml").read_text())
    state = load_file(str(FIXTURE / "official_tiny" / "model.safetensors"))
    torch.save({"config": config, "state_dict": state}, tmp_path / "dasheng-denoiser_checkpoint.pt")
    for source in (tmp_path, tmp_path / "dasheng-denoiser_checkpoint.pt"):
        loaded = DashengDenoiser.from_pretrained(source)
        wave = cases["short.input"]
        assert torch.equal(loaded(wave), model(wave))


def test_extra_or_missing_keys_are_rejected(tmp_path):
    import shutil

    shutil.copy(FIXTURE / "official_tiny" / "config.yaml", tmp_path / "config.yaml")
    state = load_file(str(FIXTURE / "official_tiny" / "model.safetensors"))
    save_file(
        {**state, "second_encoder.extra.weight": torch.zeros(2)},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(CheckpointError, match="unexpected keys.*denoiser.extra"):
        DashengDenoiser.from_pretrained(tmp_path)
    state.pop("second_encoder.norm.weight")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys.*denoiser.norm.weight"):
        DashengDenoiser.from_pretrained(tmp_path)


def test_full_size_matches_the_released_architecture():
    with torch.device("meta"):
        model = DashengDenoiser()
    n = sum(p.numel() for p in model.parameters())
    assert 118e6 < n < 119.5e6  # README: 118.5M
    assert model.encoder.embed_dim == 768 and model.denoiser.config.num_heads == 8
