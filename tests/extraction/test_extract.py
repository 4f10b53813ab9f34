"""`sonotok extract` / `sonotok embed` in one process: values, carried columns, errors, formats."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from sonotok.cli.extract import main
from sonotok.extraction.extract import (
    as_float,
    latent_column,
    make_batches,
    shard_ranges,
    shards_of_process,
)

LENGTHS = [16000, 24000, 8000, 40000, 12000, 16001, 32000, 9000, 20000, 7000]
CORRUPT = 4  # row whose audio bytes are not audio


def flac_bytes(wave: np.ndarray, rate: int = 16000, fmt: str = "FLAC") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def source(tmp_path_factory, tone):
    """A saved dataset: audio as FLAC/WAV bytes (one at 22.05 kHz stereo, one corrupt),
    an id, a caption and a ClassLabel label per row."""
    rows = {"id": [], "audio": [], "caption": [], "label": []}
    waves = []
    for i, n in enumerate(LENGTHS):
        wave = tone(n, seed=i)
        if i == 2:  # stereo at another rate: resampled and averaged like `sonotok encode`
            stereo = np.stack([wave, 0.5 * wave], 1)
            raw = flac_bytes(stereo, 22050, "WAV")
        else:
            raw = flac_bytes(wave)
        if i == CORRUPT:
            raw = b"definitely not audio" * 50
        rows["id"].append(f"clip{i:02d}")
        rows["audio"].append({"bytes": raw, "path": None})
        rows["caption"].append(f"caption number {i}")
        rows["label"].append(i % 3)
        waves.append(raw)
    ds = datasets.Dataset.from_dict(rows)  # Audio cells built from bytes without torchcodec:
    ds = ds.cast_column("audio", datasets.Audio(decode=False))  # cast at the Arrow level
    ds = ds.cast_column("label", datasets.ClassLabel(names=["a", "b", "c"]))
    folder = tmp_path_factory.mktemp("source") / "ds"
    ds.save_to_disk(str(folder))
    return folder, waves


def expected_latents(model, raw: bytes, features="fused") -> torch.Tensor:
    from sonotok.core.sources import decode_audio

    wave, _ = decode_audio({"bytes": raw, "path": None}, 16000)
    return model.encode(wave, features=features)


def run(source, out, model_dir, *extra) -> int:
    return main(
        [
            "extract",
            str(source),
            "-o",
            str(out),
            "--model",
            model_dir,
            "--shard-size",
            "3",
            "--batch-size",
            "2",
            *extra,
        ]
    )


def test_extract_values_columns_and_errors(source, tmp_path, tiny_tokenizer, tiny_tokenizer_dir):
    folder, raws = source
    out = tmp_path / "latents"
    assert run(folder, out, tiny_tokenizer_dir) == 1  # one unreadable row → exit 1
    ds = datasets.load_from_disk(str(out))
    keep = [i for i in range(len(LENGTHS)) if i != CORRUPT]
    assert ds["id"] == [f"clip{i:02d}" for i in keep]
    assert ds["caption"] == [f"caption number {i}" for i in keep]
    assert ds.features["label"].names == ["a", "b", "c"]
    assert ds["label"] == [i % 3 for i in keep]
    assert ds.features["latents"] == datasets.Array2D(shape=(None, 32), dtype="float32")
    rows = ds.with_format("torch")
    for n, i in enumerate(keep):
        want = expected_latents(tiny_tokenizer, raws[i])
        assert rows[n]["num_frames"] == want.shape[0]
        if i != 2:  # row 2 is at 22.05 kHz
            assert want.shape[0] == (1 + LENGTHS[i] // 160) // 4
        torch.testing.assert_close(rows[n]["latents"], want, atol=1e-5, rtol=1e-5)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["index"], e["id"]) for e in errors] == [(CORRUPT, f"clip{CORRUPT:02d}")]
    assert "cannot be read as audio" in errors[0]["error"]
    plan = json.loads((out / "extract.json").read_text())
    assert plan["totals"]["rows"] == len(keep) and plan["num_shards"] == 4
    # The same shards also load as an arrow dataset (no index files needed).
    other = datasets.load_dataset("arrow", data_files=str(out / "data-*.arrow"), split="train")
    assert other["id"] == ds["id"]


def test_bucketing_changes_batches_not_results(source, tmp_path, tiny_tokenizer_dir):
    folder, _ = source
    run(folder, tmp_path / "on", tiny_tokenizer_dir)
    run(folder, tmp_path / "off", tiny_tokenizer_dir, "--no-bucketing")
    on = datasets.load_from_disk(str(tmp_path / "on")).with_format("torch")
    off = datasets.load_from_disk(str(tmp_path / "off")).with_format("torch")
    assert on["id"] == off["id"]
    for a, b in zip(on, off):
        torch.testing.assert_close(a["latents"], b["latents"], atol=1e-5, rtol=1e-5)


def test_pool_mean_half_and_bfloat16(source, tmp_path, tiny_tokenizer, tiny_tokenizer_dir):
    folder, raws = source
    run(folder, tmp_path / "pooled", tiny_tokenizer_dir, "--pool", "mean", "--features", "acoustic")
    run(folder, tmp_path / "half", tiny_tokenizer_dir, "--latent-dtype", "float16")
    run(folder, tmp_path / "bf16", tiny_tokenizer_dir, "--latent-dtype", "bfloat16")
    pooled = datasets.load_from_disk(str(tmp_path / "pooled"))
    half = datasets.load_from_disk(str(tmp_path / "half"))
    bf16 = datasets.load_from_disk(str(tmp_path / "bf16"))
    assert half.features["latents"].dtype == "float16"
    want = expected_latents(tiny_tokenizer, raws[0], "acoustic")
    torch.testing.assert_close(as_float(pooled[0]["embedding"]), want.mean(0), atol=1e-5, rtol=1e-5)
    assert pooled[0]["num_frames"] == want.shape[0]
    fused = expected_latents(tiny_tokenizer, raws[0])
    got_half = as_float(half.with_format("numpy")[0]["latents"])
    got_bf16 = as_float(bf16.with_format("numpy")[0]["latents"], "bfloat16")
    # Stored values are the fp32 latents rounded once: within one unit in the last place (the
    # batch the extractor ran may differ from this single-clip pass by ~1e-7, flipping a rounding).
    torch.testing.assert_close(got_half, fused, rtol=2**-10, atol=1e-5)
    torch.testing.assert_close(got_bf16, fused, rtol=2**-7, atol=1e-5)
    assert (got_half == fused.half().float()).float().mean() > 0.99
    assert not torch.equal(got_bf16, got_half)


def test_folder_source_keeps_relative_ids(tmp_path, tone, tiny_tokenizer_dir):
    for name in ("dogs/a.wav", "dogs/b.flac", "cats/c.wav"):
        path = tmp_path / "audio" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(9000, seed=len(name)), 16000)
    assert run(tmp_path / "audio", tmp_path / "out", tiny_tokenizer_dir) == 0
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert ds["id"] == ["cats/c", "dogs/a", "dogs/b"]
    assert ds["path"] == ["cats/c.wav", "dogs/a.wav", "dogs/b.flac"]
    assert ds["num_frames"] == [(1 + 9000 // 160) // 4] * 3


def test_csv_manifest_with_relative_paths(tmp_path, tone, tiny_tokenizer_dir):
    (tmp_path / "wav").mkdir()
    for i in range(3):
        sf.write(tmp_path / "wav" / f"{i}.wav", tone(8000 + 1000 * i, seed=i), 16000)
    rows = "path,caption\nwav/0.wav,zero\nwav/1.wav,one\nwav/gone.wav,lost\nwav/2.wav,two\n"
    (tmp_path / "meta.csv").write_text(rows)
    assert run(tmp_path / "meta.csv", tmp_path / "out", tiny_tokenizer_dir) == 1
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert ds["caption"] == ["zero", "one", "two"]
    assert ds["path"] == ["wav/0.wav", "wav/1.wav", "wav/2.wav"]  # a path column is kept
    assert ds["num_frames"] == [(1 + (8000 + 1000 * i) // 160) // 4 for i in range(3)]
    (error,) = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert (
        error["index"] == 2 and error["id"] == "wav/gone.wav" and "does not exist" in error["error"]
    )


def test_existing_output_needs_resume_and_same_settings(
    source, tmp_path, tiny_tokenizer_dir, capsys
):
    folder, _ = source
    out = tmp_path / "out"
    run(folder, out, tiny_tokenizer_dir)
    assert run(folder, out, tiny_tokenizer_dir) == 2
    assert "--resume" in capsys.readouterr().err
    assert run(folder, out, tiny_tokenizer_dir, "--resume", "--features", "semantic") == 2
    assert "features" in capsys.readouterr().err
    assert run(folder, out, tiny_tokenizer_dir, "--resume") == 1  # nothing left to do, same errors


def test_missing_source_is_one_clear_line(tmp_path, tiny_tokenizer_dir, capsys):
    assert run(tmp_path / "nowhere", tmp_path / "out", tiny_tokenizer_dir) == 2
    err = capsys.readouterr().err
    assert "nowhere: no such file or folder" in err and "Traceback" not in err


def test_make_batches_respects_caps_and_buckets():
    lengths = [5, 50, 7, 48, 6, 49, 30]
    bucketed = make_batches(lengths, batch_size=3, max_samples=120, bucketing=True)
    plain = make_batches(lengths, batch_size=3, max_samples=120, bucketing=False)
    for batches in (bucketed, plain):
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert len(b) <= 3 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 120)
    assert [sorted(b) for b in bucketed] == [[1, 5], [3, 6], [0, 2, 4]]
    padded = lambda bs: sum(len(b) * max(lengths[i] for i in b) for b in bs)  # noqa: E731
    assert padded(bucketed) < padded(plain)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_latent_column_matches_datasets_encoding_across_chunks(dtype):
    values = [np.arange(n * 4, dtype=dtype).reshape(n, 4) for n in (3, 0, 2, 5)]
    features = datasets.Features({"x": datasets.Array2D(shape=(None, 4), dtype=dtype)})
    column = latent_column(values, features.arrow_schema.field("x").type, max_elements=12)
    assert column.num_chunks == 3  # 32-bit list offsets: long shards are split
    reference = datasets.Dataset.from_dict({"x": values}, features=features)
    ours = datasets.Dataset(pa.table({"x": column}), info=datasets.DatasetInfo(features=features))
    for a, b in zip(ours.with_format("numpy")["x"], reference.with_format("numpy")["x"]):
        np.testing.assert_array_equal(a, b)


def test_shards_split_disjointly_across_processes():
    ranges = shard_ranges(10, 3)
    assert ranges == [(0, 3), (3, 6), (6, 9), (9, 10)]
    owned = [shards_of_process(len(ranges), r, 3) for r in range(3)]
    assert sorted(k for o in owned for k in o) == [0, 1, 2, 3]
    assert owned == [[0, 3], [1], [2]]


def test_embed_pooled_and_frame_level(tmp_path, tone, tiny_tokenizer, tiny_tokenizer_dir):
    sf.write(tmp_path / "a.wav", tone(20000), 16000)
    base = [
        "embed",
        str(tmp_path / "a.wav"),
        "--model",
        tiny_tokenizer_dir,
        "--features",
        "semantic",
    ]
    assert main([*base, "-o", str(tmp_path / "pooled")]) == 0
    assert main([*base, "-o", str(tmp_path / "frames"), "--pool", "none", "--format", "npy"]) == 0
    want = tiny_tokenizer.encode(
        torch.from_numpy(sf.read(tmp_path / "a.wav", dtype="float32")[0]), features="semantic"
    )
    with safe_open(str(tmp_path / "pooled" / "a.safetensors"), framework="pt") as f:
        pooled, meta = f.get_tensor("embedding"), f.metadata()
    assert meta["pool"] == "mean" and meta["features"] == "semantic"
    torch.testing.assert_close(pooled, want.mean(0), atol=1e-5, rtol=1e-5)
    frames = torch.from_numpy(np.load(tmp_path / "frames" / "a.npy"))
    torch.testing.assert_close(frames, want, atol=1e-5, rtol=1e-5)
