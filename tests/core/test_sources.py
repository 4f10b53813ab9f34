"""The one audio-source spec and reader: every kind of source, errors naming the source,
the streaming cache, span reads through the bounded decoder and the one extension list."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.core.errors import AudioInputError, ConfigError, DataError
from sonotok.core.sources import (
    AUDIO_EXTENSIONS,
    SourceSpec,
    expand_inputs,
    open_dataset,
    open_source,
    source_spec,
    source_specs,
    source_type,
)


def wav_bytes(wave: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


@pytest.fixture()
def tree(tmp_path, tone):
    """root/a.wav (16 kHz), root/sub/b.flac (stereo 44.1 kHz), root/sub/c.aiff, root/notes.txt."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", tone(8000, seed=1), 16000, subtype="FLOAT")
    left = tone(22050, 44100, seed=2)
    sf.write(root / "sub" / "b.flac", np.stack([left, np.zeros_like(left)], 1), 44100)
    sf.write(root / "sub" / "c.aiff", tone(4000, seed=3), 16000)
    (root / "notes.txt").write_text("not audio")
    return root


# ---- the spec ---------------------------------------------------------------------------
def test_spec_takes_a_path_a_mapping_the_older_enhancement_form_or_a_list():
    assert source_spec("clips/") == SourceSpec(path="clips/")
    spec = source_spec({"path": "x", "weight": 3, "split": "test"})
    assert (spec.path, spec.weight, spec.split, spec.type) == ("x", 3.0, "test", "auto")
    legacy = source_spec({"dataset": "corpus/clips", "split": "train", "column": "audio"})
    assert (legacy.path, legacy.type, legacy.audio_column) == ("corpus/clips", "hf", "audio")
    assert [s.path for s in source_specs(["a", {"path": "b"}])] == ["a", "b"]


@pytest.mark.parametrize(
    "value, message",
    [
        ({"path": "x", "weight": 0}, "source x: weight must be > 0"),
        ({"path": "x", "wieght": 1}, "unknown config key clean.wieght"),
        ({"path": "x", "type": "folder", "streaming": True}, "streaming applies to type hf"),
        ({"path": "x", "type": "zip"}, "clean.type: 'zip' is not one of"),
        ({"path": "x", "max_items": 0}, "max_items must be >= 1"),
        (3, "clean: expected a path or a mapping"),
    ],
)
def test_bad_specs_are_config_errors_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message):
        source_spec(value, "clean")


# ---- every kind of source ----------------------------------------------------------------
def test_folder_is_searched_recursively_with_the_one_extension_list(tree, tone):
    source = open_source(str(tree), sample_rate=8000)
    assert source_type(SourceSpec(str(tree))) == "folder"
    assert [source.item_id(i) for i in range(len(source))] == ["a", "sub/b", "sub/c"]
    item = source[0]
    assert (item.id, item.name, item.metadata) == ("a", str(tree / "a.wav"), {"id": "a"})
    assert item.wave.dtype == torch.float32 and item.wave.shape == (4000,)  # 16 → 8 kHz
    stereo = source.read(1, 16000)  # 44.1 kHz, right channel silent: averaged, resampled
    assert stereo.shape == (8000,) and 0.1 < np.abs(stereo).max() < 0.3
    np.testing.assert_allclose(source.read(2, 16000), tone(4000, seed=3), atol=1 / 32768)


def test_glob_and_single_file_sources(tree):
    pattern = open_source(str(tree / "**" / "*.*"))
    assert [pattern.item_id(i) for i in range(len(pattern))] == ["a", "sub/b", "sub/c"]
    assert pattern.path(1) == tree / "sub" / "b.flac"
    single = open_source(tree / "sub" / "c.aiff")
    assert (len(single), single.item_id(0), single.path(0)) == (1, "c", tree / "sub" / "c.aiff")


def test_manifests_resolve_paths_against_their_folder(tmp_path, tree, monkeypatch):
    (tmp_path / "m.csv").write_text("path,id,label\ntree/a.wav,001,3\ntree/sub/c.aiff,002,4\n")
    (tmp_path / "m.tsv").write_text("audio\tid\ntree/a.wav\tx\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "tree/sub/c.aiff", "caption": "c"}))
    (tmp_path / "m.txt").write_text("# a list\ntree/a.wav\n")
    monkeypatch.chdir(tree / "sub")  # relative to the manifest, not to the working directory
    csv_source = open_source(tmp_path / "m.csv")
    assert [csv_source.path(i) for i in range(2)] == [tree / "a.wav", tree / "sub" / "c.aiff"]
    assert csv_source.item_id(0) == "001"  # id columns stay text
    assert csv_source[1].metadata == {"id": "002", "label": 4}  # the columns beside the audio
    assert open_source(tmp_path / "m.tsv").item_id(0) == "x"
    assert open_source(tmp_path / "m.jsonl")[0].metadata["caption"] == "c"
    assert open_source(tmp_path / "m.txt").path(0) == tree / "a.wav"


def test_saved_dataset_picks_splits_and_reads_bytes_paths_and_arrays(tmp_path, tone):
    rows = {
        "audio": [{"bytes": wav_bytes(tone(16000, seed=s)), "path": None} for s in (1, 2)],
        "speaker": ["s1", "s2"],
        "label": [0, 1],
    }
    data = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"train": data, "test": data.select([1])}).save_to_disk(tmp_path / "ds")
    train = open_source(SourceSpec(str(tmp_path / "ds"), id_column="speaker", label_column="label"))
    assert (len(train), train.id_column, train.label_column) == (2, "speaker", "label")
    assert train.name(1) == f"dataset {tmp_path / 'ds'} row 1 (speaker=s2)"
    assert torch.allclose(train[1].wave, torch.from_numpy(tone(16000, seed=2)), atol=1e-6)
    test = open_source({"path": str(tmp_path / "ds"), "split": "test"})
    assert test.item_id(0) == "0" and test[0].metadata["speaker"] == "s2"  # no id column: row
    arrays = datasets.Dataset.from_dict(
        {"audio": [{"array": tone(4000, 8000).tolist(), "sampling_rate": 8000}]}
    )
    arrays.to_parquet(str(tmp_path / "arrays.parquet"))
    source = open_source(SourceSpec(str(tmp_path / "arrays.parquet"), audio_column="audio"))
    assert source.read(0, 16000).shape == (8000,)
    assert len(open_source(SourceSpec(str(tmp_path / "ds"), max_items=1))) == 1
    latents = datasets.Dataset.from_dict({"latents": [[[0.5, 1.0]]], "num_frames": [1]})
    latents.save_to_disk(tmp_path / "latents")  # no audio: open_dataset still lists it (probe)
    assert open_dataset(tmp_path / "latents")[0]["num_frames"] == [1]


def test_errors_name_the_source_and_the_fix(tmp_path, tone):
    (tmp_path / "empty").mkdir()
    (tmp_path / "table.xlsx").write_text("?")
    (tmp_path / "nopath.csv").write_text("domain\nen\n")
    (tmp_path / "blank.csv").write_text("path,domain\na.wav,x\n,y\n")
    text = datasets.Dataset.from_dict({"text": ["hi"]})
    datasets.DatasetDict({"train": text}).save_to_disk(tmp_path / "text")
    cases = [
        (tmp_path / "missing", "missing: no such file or folder; check the path"),
        (tmp_path / "empty", "empty: holds no audio files"),
        (tmp_path / "table.xlsx", r"table.xlsx: cannot read '.xlsx' files as a source"),
        (tmp_path / "nopath.csv", r"nopath.csv: no audio path column .*add a 'path' column"),
        (tmp_path / "blank.csv", r"blank.csv: row 2 has no audio path"),
        (tmp_path / "text", r"text: no audio column found among \['text'\]"),
        (str(tmp_path / "nothing*.wav"), r"nothing\*.wav: matched no audio files"),
        ({"path": str(tmp_path / "text"), "split": "dev"}, r"text: has splits \['train'\]"),
        ({"path": str(tmp_path / "text"), "audio_column": "speech"}, r"text: no column 'speech'"),
    ]
    sf.write(tmp_path / "a.wav", tone(1000), 16000)
    cases.append(({"path": str(tmp_path / "a.wav"), "id_column": "utt"}, r"a.wav: no column 'utt'"))
    for value, message in cases:
        with pytest.raises(DataError, match=message):
            open_source(value)
    (tmp_path / "b.wav").write_text("not audio")
    source = open_source(str(tmp_path / "*.wav"))
    with pytest.raises(AudioInputError, match=r"b\.wav: cannot be read as audio"):
        source[1]


# ---- reading through the bounded decoder ---------------------------------------------------
def test_span_reads_decode_only_the_span_and_equal_the_whole(tmp_path, tone):
    wave = tone(20000, seed=4)
    data = datasets.Dataset.from_dict({"audio": [{"bytes": wav_bytes(wave), "path": None}]})
    data.cast_column("audio", datasets.Audio(decode=False)).save_to_disk(tmp_path / "ds")
    sf.write(tmp_path / "x.wav", wave, 16000, subtype="FLOAT")
    for source in (open_source(tmp_path / "ds"), open_source(tmp_path / "x.wav")):
        item = source.open(0)
        assert (item.rate, item.frames, item.channels) == (16000, 20000, 1)
        np.testing.assert_array_equal(item.read(1234, 3000), wave[1234:4234])
        np.testing.assert_array_equal(item.read(19000, 3000), wave[19000:])  # clipped at the end


def test_a_header_the_stored_bytes_cannot_hold_is_refused_before_decoding(tmp_path, tone):
    raw = bytearray(wav_bytes(tone(4000)))
    raw[24:28] = (1).to_bytes(4, "little")  # WAV sample rate field: 1 Hz
    data = datasets.Dataset.from_dict({"audio": [{"bytes": bytes(raw), "path": None}], "id": ["x"]})
    data.save_to_disk(tmp_path / "ds")
    source = open_source(tmp_path / "ds")
    for read in (source.open, source.read):
        with pytest.raises(
            AudioInputError, match=r"row 0 \(id=x\): its stored bytes: sample rate 1"
        ):
            read(0)


# ---- streaming -----------------------------------------------------------------------------
def test_streamed_items_are_cached_in_stream_order_and_reused(tmp_path, tone, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    folder = tmp_path / "stream"
    folder.mkdir()
    rows = {"audio": [{"bytes": wav_bytes(tone(4000, seed=i)), "path": None} for i in range(5)]}
    rows["id"] = [f"clip{i}" for i in range(5)]
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "train.parquet"))
    spec = SourceSpec(str(folder), streaming=True, max_items=3, id_column="id")
    first = open_source(spec)
    assert [first.item_id(i) for i in range(len(first))] == ["clip0", "clip1", "clip2"]
    for i in range(3):
        np.testing.assert_allclose(first.read(i), tone(4000, seed=i), atol=1e-7)
    (folder / "train.parquet").unlink()  # the stream is gone: the cache answers, same order
    again = open_source(spec)
    assert again.dataset.cache_files == first.dataset.cache_files
    assert first.dataset.cache_files[0]["filename"].startswith(str(tmp_path / "cache"))
    assert [again.item_id(i) for i in range(3)] == ["clip0", "clip1", "clip2"]
    np.testing.assert_array_equal(again.read(2), first.read(2))
    with pytest.raises(DataError, match="cannot be streamed"):
        open_source(SourceSpec(str(folder), streaming=True, max_items=4))  # another cache key


# ---- one extension list --------------------------------------------------------------------
def test_an_aiff_file_is_found_by_every_reader(tmp_path, tone):
    from sonotok.enhancement.data import AudioSource as EnhancementSource
    from sonotok.evaluation.data import discover
    from sonotok.tokenizer.train.data import SourceConfig
    from sonotok.tokenizer.train.data import open_source as open_training_source

    assert {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif"} == set(AUDIO_EXTENSIONS)
    folder = tmp_path / "clips"
    folder.mkdir()
    sf.write(folder / "x.aiff", tone(4000), 16000)
    sf.write(folder / "y.AIF", tone(4000, seed=1), 16000, format="AIFF")
    pairs, problems = expand_inputs([str(folder)])  # `sonotok encode` / `reconstruct` inputs
    assert [p.name for p, _ in pairs] == ["x.aiff", "y.AIF"] and problems == []
    assert [it.id for it in discover(folder)] == ["x", "y"]  # `sonotok eval`
    assert len(open_training_source(SourceConfig(path=str(folder)))) == 2  # training data
    enhancement = EnhancementSource(str(folder), "data.clean")
    assert len(enhancement) == 2 and enhancement.read(1, 16000).shape == (4000,)
