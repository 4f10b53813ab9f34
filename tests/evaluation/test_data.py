"""Datasets: folders, manifests, captions and pairing by id."""

import pytest
import torch

from sonotok.evaluation import EvaluationInputError, discover, pair, read_captions
from sonotok.tokenizer import write_audio


def test_folder_ids_are_relative_paths_and_subfolders_are_domains(tmp_path, tone):
    write_audio(tmp_path / "speech" / "spk1" / "u1.wav", tone(1000), 16000)
    write_audio(tmp_path / "top.flac", tone(1000), 16000)
    (tmp_path / "notes.txt").write_text("ignored")
    items = discover(tmp_path)
    assert [(it.id, it.domain) for it in items] == [("speech/spk1/u1", "speech"), ("top", None)]


def test_jsonl_manifest_with_captions_and_domains(tmp_path, tone):
    write_audio(tmp_path / "a.wav", tone(1000), 16000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"path": "a.wav", "domain": "sfx", "caption": "a dog barks", "id": "x1"}\n\n'
    )
    (item,) = discover(manifest)
    assert (item.id, item.domain, item.caption, item.path) == (
        "x1",
        "sfx",
        "a dog barks",
        tmp_path / "a.wav",
    )
    assert read_captions(manifest) == {"x1": "a dog barks"}


def test_bad_inputs_name_the_file_and_the_fix(tmp_path, tone):
    with pytest.raises(EvaluationInputError, match="holds no audio files"):
        discover(tmp_path)
    bad = tmp_path / "m.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(EvaluationInputError, match=r"m.jsonl:1: not valid JSON"):
        discover(bad)
    no_path = tmp_path / "m.csv"
    no_path.write_text("domain\nen\n")
    with pytest.raises(EvaluationInputError, match="add a 'path' column"):
        discover(no_path)
    write_audio(tmp_path / "d" / "a.wav", tone(1000), 16000)
    write_audio(tmp_path / "d" / "a.flac", tone(1000), 16000)
    with pytest.raises(EvaluationInputError, match="share the id 'a'"):
        discover(tmp_path / "d")


def test_pairing_reports_every_unpaired_file(tmp_path, tone):
    for name in ("clean/a.wav", "clean/b.wav", "enh/a.flac"):
        write_audio(tmp_path / name, tone(1000), 16000)
    pairs, errors = pair(discover(tmp_path / "clean"), discover(tmp_path / "enh"), "enhanced")
    assert [(a.id, b.path.name) for a, b in pairs] == [("a", "a.flac")]
    assert (
        len(errors) == 1 and errors[0][0].endswith("b.wav") and "no enhanced file" in errors[0][1]
    )


def test_hugging_face_dataset_rows_pair_with_files_by_id(tmp_path, tone):
    import io

    import datasets
    import soundfile as sf

    def wav_bytes(seed):
        buffer = io.BytesIO()
        sf.write(buffer, tone(16000, seed=seed), 16000, format="WAV")
        return buffer.getvalue()

    data = datasets.Dataset.from_dict(
        {
            "audio": [{"bytes": wav_bytes(s), "path": None} for s in (1, 2)],
            "id": ["spk/u1", "spk/u2"],
            "domain": ["en", "zh"],
        }
    ).cast_column("audio", datasets.Audio(decode=False))
    data.save_to_disk(str(tmp_path / "ds"))
    items = discover(tmp_path / "ds")
    assert [(it.id, it.domain) for it in items] == [("spk/u1", "en"), ("spk/u2", "zh")]
    assert "row 0" in items[0].name
    wave = items[0].load(16000)
    assert torch.allclose(wave, torch.from_numpy(tone(16000, seed=1)), atol=1e-4)  # 16-bit wav
    assert (
        items[0].digest() != items[1].digest()
        and items[0].digest() == discover(tmp_path / "ds")[0].digest()
    )
    write_audio(tmp_path / "out" / "spk" / "u2.flac", tone(16000, seed=2), 16000)
    pairs, errors = pair(items, discover(tmp_path / "out"), "decoded")
    assert [a.id for a, _ in pairs] == ["spk/u2"] and "spk/u1" in errors[0][1]
