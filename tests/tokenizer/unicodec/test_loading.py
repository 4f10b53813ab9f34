"""Loading UniCodec: the official Lightning checkpoint (safely, strictly), our own format, and
the names `load_tokenizer` resolves to it."""

from __future__ import annotations

import argparse
import json
import pickle
import shutil

import pytest
import torch

from sonotok.core.errors import CheckpointError, ModelNotFoundError
from sonotok.tokenizer.interface import load_tokenizer
from sonotok.tokenizer.unicodec import UnicodecTokenizer, family
from sonotok.tokenizer.unicodec.loading import read_state_dict

from .conftest import FIXTURE, OFFICIAL

CKPT = OFFICIAL / "unicodec_tiny.ckpt"


def _official_copy(tmp_path, edit) -> str:
    """A copy of the tiny official checkpoint with `edit(ckpt)` applied."""
    ckpt = torch.load(CKPT, weights_only=True)
    edit(ckpt)
    folder = tmp_path / "unicodec_edited"
    folder.mkdir()
    torch.save(ckpt, folder / "model.ckpt")
    return str(folder)


def test_official_checkpoint_config_is_read_from_its_shapes(tiny):
    size = json.loads((FIXTURE / "meta.json").read_text())["size"]
    c = tiny.config
    assert (c.dimension, c.n_filters, list(c.ratios), c.transformer_layers) == (
        size["dimension"], size["n_filters"], size["ratios"], size["layers"],
    )  # fmt: skip
    assert (c.codebook_size, c.decoder_dim, c.decoder_layers, c.moe_hidden) == (
        size["codebook"], size["decoder_dim"], size["decoder_layers"], size["moe_hidden"],
    )  # fmt: skip
    assert (c.hop_length, c.n_fft, c.transformer_heads) == (80, 320, 8)


def test_checkpoint_file_and_folder_load_the_same_weights(tiny):
    from_file = UnicodecTokenizer.from_pretrained(CKPT)
    assert from_file.domain == "auto"
    for (k, a), (_, b) in zip(tiny.state_dict().items(), from_file.state_dict().items()):
        assert torch.equal(a, b), k


def test_an_unknown_key_is_refused(tmp_path):
    folder = _official_copy(tmp_path, lambda c: c["state_dict"].update(extra=torch.zeros(1)))
    with pytest.raises(CheckpointError, match="extra"):
        UnicodecTokenizer.from_pretrained(folder)


def test_a_missing_key_is_refused(tmp_path):
    key = "backbone.convnext.1.gamma"
    folder = _official_copy(tmp_path, lambda c: c["state_dict"].pop(key))
    with pytest.raises(CheckpointError, match="missing keys"):
        UnicodecTokenizer.from_pretrained(folder)


def test_objects_that_weights_only_refuses_are_read_without_running_code(tmp_path):
    # a Namespace in the hyper-parameters, and an object whose unpickling would run code
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (shutil.copy, (str(CKPT), str(marker)))

    def edit(ckpt):
        ckpt["hyper_parameters"]["args"] = argparse.Namespace(lr=1e-4)
        ckpt["callbacks"]["payload"] = Payload()

    folder = _official_copy(tmp_path, edit)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(f"{folder}/model.ckpt", weights_only=True)
    state = read_state_dict(tmp_path / "unicodec_edited" / "model.ckpt")
    assert not marker.exists()
    assert torch.equal(
        state["head.out.bias"], torch.load(CKPT, weights_only=True)["state_dict"]["head.out.bias"]
    )


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    folder = tmp_path / "unicodec_bad"
    folder.mkdir()
    (folder / "model.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        UnicodecTokenizer.from_pretrained(folder)
    with pytest.raises(ModelNotFoundError, match="no .ckpt"):
        UnicodecTokenizer.from_pretrained(tmp_path)


def test_our_format_round_trips(tiny, tiny_folder, cases):
    config = json.loads((tiny_folder / "config.json").read_text())
    assert config["model_type"] == "unicodec" and config["codebook_size"] == 256
    again = load_tokenizer(tiny_folder)
    assert isinstance(again, UnicodecTokenizer)
    wave = cases["input_1"]
    assert torch.equal(again.codes_waves([wave], "sound")[0], tiny.codes_waves([wave], "sound")[0])


@pytest.mark.parametrize("name", ["unicodec", "Yidiii/UniCodec_ckpt"])
def test_load_tokenizer_resolves_the_official_names(name, monkeypatch):
    asked = []

    def fake_resolve(name_or_path, **options):
        asked.append((name_or_path, options["allow_patterns"]))
        return OFFICIAL

    monkeypatch.setattr(family, "resolve", fake_resolve)
    model = load_tokenizer(name)
    assert isinstance(model, UnicodecTokenizer) and model.codebook_size == 256
    assert asked[0][0] == "Yidiii/UniCodec_ckpt" and "*.ckpt" in asked[0][1]


def test_claims_only_unicodec_names(tmp_path):
    assert UnicodecTokenizer.claims(str(CKPT)) and UnicodecTokenizer.claims(str(OFFICIAL))
    assert not UnicodecTokenizer.claims("facebook/encodec_24khz")
    assert not UnicodecTokenizer.claims(str(tmp_path))
