"""Parity with the reference DashengTokenizer implementation.

The fixture (tests/fixtures/tokenizer_parity/, made by make_tokenizer_parity.py with the
reference code and torchaudio in a separate environment) holds a reduced-width model in the
official layout with random weights, inputs, and the reference's outputs.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sonotok.tokenizer import AudioTokenizer, CheckpointError
from sonotok.tokenizer.checkpoints import OFFICIAL_TOKENIZER_KEYS, rename_keys
from sonotok.tokenizer.mel import power_to_db

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizer_parity"
TOL = 1e-4


@pytest.fixture(scope="module")
def cases():
    return load_file(str(FIXTURE / "cases.safetensors"))


@pytest.fixture(scope="module")
def model():
    return AudioTokenizer.from_pretrained(FIXTURE / "official_tiny")


def test_official_layout_loads_strictly(model):
    official = load_file(str(FIXTURE / "official_tiny" / "model.safetensors"))
    ours = model.state_dict()
    mapped = rename_keys(official, OFFICIAL_TOKENIZER_KEYS)
    derived = {k for k in mapped if k not in ours}
    assert derived == {
        "semantic.front_end.window",
        "semantic.front_end.fb",
        "acoustic.front_end.window",
        "acoustic.front_end.fb",
        "decoder.head.istft.window",
    }
    for key, value in ours.items():
        assert torch.equal(value, mapped[key]), key
    assert model.config.semantic.depth == 2 and model.config.decoder.num_layers == 2


def test_official_layout_rejects_extra_or_missing(tmp_path):
    import shutil

    from safetensors.torch import save_file

    shutil.copy(FIXTURE / "official_tiny" / "config.json", tmp_path / "config.json")
    state = load_file(str(FIXTURE / "official_tiny" / "model.safetensors"))
    save_file(
        {**state, "encoder.model.outputlayer.weight": torch.zeros(2, 2)},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(CheckpointError, match="unexpected keys.*outputlayer"):
        AudioTokenizer.from_pretrained(tmp_path)
    del state["decoder.backbone.convnext.1.gamma"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys.*convnext.1.gamma"):
        AudioTokenizer.from_pretrained(tmp_path)


def test_front_ends_equal_torchaudio(model, cases):
    x = cases["x_1s"]
    sem = model.semantic.front_end.frames(x)
    ours_db = power_to_db(sem, sem.amax())
    assert torch.allclose(ours_db, cases["semantic_mel_db_1s"], atol=1e-3)  # dB values up to ~50
    ours_log = torch.log(torch.clamp(model.acoustic.front_end.frames(x), min=1e-7))
    assert torch.allclose(ours_log, cases["acoustic_logmel_1s"], atol=1e-4)


@pytest.mark.parametrize("name", ["x_1s", "x_10_08s", "x_12_5s"])
def test_encode_matches_reference(model, cases, name):
    z = model.encode(cases[name])
    ref = cases[f"enc_{name}"]
    assert z.shape == ref.shape
    assert (z - ref).abs().max() < TOL


@pytest.mark.parametrize("name", ["x_1s", "x_12_5s"])
def test_decode_matches_reference(model, cases, name):
    y = model.decode(cases[f"enc_{name}"])
    ref = cases[f"dec_{name}"]
    assert y.shape == ref.shape
    assert (y - ref).abs().max() < TOL
    assert (model.decode(cases[f"enc_{name}"], chunk_frames=60) - ref).abs().max() < TOL


def test_padded_batch_matches_reference_per_clip(model, cases):
    """sonotok is batch invariant: each clip of a padded batch equals the reference on that clip alone."""
    z = model.encode(cases["batch_audio"], attention_mask=cases["batch_mask"])
    for i in range(3):
        ref = cases[f"enc_batch_alone_{i}"]
        assert (z[i, : len(ref)] - ref).abs().max() < TOL
        assert (model.decode(z[i, : len(ref)]) - cases[f"dec_batch_alone_{i}"]).abs().max() < TOL
    # The unpadded clip also equals the reference's own batched output.
    assert (z[1] - cases["enc_batch"][1]).abs().max() < TOL


def test_forward_returns_embeddings_and_audio_like_the_reference(model, cases):
    out = model(cases["x_1s"][None])
    assert (out["embeddings"][0] - cases["enc_x_1s"]).abs().max() < TOL
    assert (out["audio"][0] - cases["dec_x_1s"]).abs().max() < TOL


def test_length_table_matches_reference(model, cases):
    for n, frames, samples in cases["length_table"].tolist():
        assert model.num_latent_frames(n) == frames
        assert frames * model.hop_samples == samples
