"""Enhancement folders load wherever they are moved (issue 17 item 2), and the official
dasheng-denoiser saves in its own layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import load_file

from sonotok.core.errors import ModelNotFoundError
from sonotok.enhancement import DashengDenoiser, EnhancementPipeline, save_enhancement

OFFICIAL = Path(__file__).resolve().parents[1] / "fixtures" / "denoiser_parity" / "official_tiny"


@pytest.fixture()
def offline_hub(monkeypatch):
    def snapshot_download(repo_id, **kwargs):
        raise LocalEntryNotFoundError(f"{repo_id} is not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def _same_enhancement(a: EnhancementPipeline, b: EnhancementPipeline, tone) -> None:
    x = tone(16000, 16000, seed=5)
    torch.testing.assert_close(
        torch.as_tensor(a.enhance(x, 16000)),
        torch.as_tensor(b.enhance(x, 16000)),
        atol=1e-6,
        rtol=0,
    )


def test_a_saved_folder_loads_after_it_is_moved(tmp_path, tiny_pipeline, tone):
    tiny_pipeline.save_pretrained(tmp_path / "a" / "model")
    assert json.loads((tmp_path / "a/model/config.json").read_text())["tokenizer"] == "tokenizer"
    moved = shutil.move(tmp_path / "a" / "model", tmp_path / "elsewhere")
    _same_enhancement(EnhancementPipeline.from_pretrained(moved), tiny_pipeline, tone)


def test_a_local_tokenizer_reference_is_stored_absolute(
    tmp_path, monkeypatch, tiny_pipeline, tiny_tokenizer, tone
):
    """What `sonotok train enhancement` exports with `tokenizer: runs/tiny-tokenizer`."""
    monkeypatch.chdir(tmp_path)
    tiny_tokenizer.save_pretrained(Path("runs/tiny-tokenizer"))
    save_enhancement("runs/enh/model", tiny_pipeline.model.denoiser, None, "runs/tiny-tokenizer")
    config = json.loads(Path("runs/enh/model/config.json").read_text())
    assert config["tokenizer"] == str(tmp_path / "runs" / "tiny-tokenizer")
    assert not Path("runs/enh/model/tokenizer").exists()
    moved = shutil.move(tmp_path / "runs" / "enh" / "model", tmp_path / "shipped")
    monkeypatch.chdir(tmp_path / "shipped")
    _same_enhancement(EnhancementPipeline.from_pretrained(moved), tiny_pipeline, tone)


def test_a_hub_id_reference_is_kept(tmp_path, tiny_pipeline):
    tiny_pipeline.save_pretrained(tmp_path / "m", tokenizer_reference="mispeech/dashengtokenizer")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["tokenizer"] == "mispeech/dashengtokenizer"
    assert not (tmp_path / "m" / "tokenizer").exists()


def test_a_reference_that_is_neither_a_folder_nor_a_hub_id_is_refused(tmp_path, tiny_pipeline):
    with pytest.raises(ModelNotFoundError, match="'../tokenizer' .* no such folder"):
        tiny_pipeline.save_pretrained(tmp_path / "m", tokenizer_reference="../tokenizer")
    assert not (tmp_path / "m" / "config.json").exists()


def _with_reference(source: str, folder: Path, reference: str) -> Path:
    shutil.copytree(source, folder)
    shutil.rmtree(folder / "tokenizer")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "tokenizer": reference}))
    return folder


def test_a_relative_reference_inside_the_folder_tree_still_loads(
    tmp_path, tiny_pipeline_dir, tiny_tokenizer, tiny_pipeline, tone
):
    """The bundled sonotok-mini denoiser names "../tokenizer", shipped beside it."""
    tiny_tokenizer.save_pretrained(tmp_path / "bundle" / "tokenizer")
    folder = _with_reference(tiny_pipeline_dir, tmp_path / "bundle" / "denoiser", "../tokenizer")
    _same_enhancement(EnhancementPipeline.from_pretrained(folder), tiny_pipeline, tone)


def test_a_dangling_relative_reference_is_a_clear_error(tmp_path, tiny_pipeline_dir):
    folder = _with_reference(tiny_pipeline_dir, tmp_path / "moved", "../tokenizer")
    with pytest.raises(ModelNotFoundError) as err:
        EnhancementPipeline.from_pretrained(folder)
    message = str(err.value)
    assert str(folder / "config.json") in message and "relative path '../tokenizer'" in message
    assert "--tokenizer FOLDER" in message and "save_pretrained()" in message


def test_a_moved_export_naming_a_training_path_is_a_clear_error(
    tmp_path, tiny_pipeline_dir, tiny_tokenizer, offline_hub, monkeypatch, tiny_pipeline, tone
):
    """Exports made before references were absolute: 'runs/tiny-tokenizer' also reads as a hub
    id, so it is tried there, and the error says to pass the tokenizer folder."""
    folder = _with_reference(tiny_pipeline_dir, tmp_path / "moved", "runs/tiny-tokenizer")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError) as err:
        EnhancementPipeline.from_pretrained(folder)
    message = str(err.value)
    assert "names the tokenizer 'runs/tiny-tokenizer', which cannot be found" in message
    assert "--tokenizer FOLDER" in message
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    pipe = EnhancementPipeline.from_pretrained(folder, tokenizer=str(tmp_path / "tok"))
    _same_enhancement(pipe, tiny_pipeline, tone)


def test_official_denoiser_saves_in_the_official_layout(tmp_path):
    model = DashengDenoiser.from_pretrained(OFFICIAL)
    model.save_pretrained(tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == [
        "config.yaml",
        "model.safetensors",
    ]
    original = load_file(str(OFFICIAL / "model.safetensors"))
    written = load_file(str(tmp_path / "copy" / "model.safetensors"))
    assert sorted(written) == sorted(original)  # official key names, derived tables included
    for key, value in original.items():
        torch.testing.assert_close(written[key], value, rtol=0, atol=1e-6, msg=key)
    again = EnhancementPipeline.from_pretrained(tmp_path / "copy", chunk_seconds=None)
    wave = torch.linspace(-0.5, 0.5, 8000)
    assert torch.equal(again.model(wave), model(wave))
