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
    with pytest.raises(
        ModelNotFoundError, match="huggingface-cli download mispeech/dashengtokenizer"
    ):
        AudioTokenizer.from_pretrained("mispeech/dashengtokenizer")
