"""What `sonotok extract` / `sonotok embed` refuse to write: NaN model output, and what they do
when the disk fills up or a killed run left temporary files."""

from __future__ import annotations

import copy
import errno
import json
import subprocess
import sys

import datasets
import pytest
import soundfile as sf
import torch

import sonotok.extraction.extract as extract_module
from sonotok.cli.extract import main

LENGTHS = {"a.wav": 9000, "b.wav": 20000, "c.wav": 12000}


@pytest.fixture()
def folder(tmp_path, tone):
    root = tmp_path / "audio"
    root.mkdir()
    for i, (name, n) in enumerate(LENGTHS.items()):
        sf.write(root / name, tone(n, seed=i), 16000)
    return root


def _extract(source, out, model, *extra):
    return main(["extract", str(source), "-o", str(out), "--model", model, *extra])


def test_nan_latents_become_error_rows_and_are_never_stored(
    folder, tmp_path, tiny_tokenizer_dir, capsys, monkeypatch
):
    real = extract_module.encode_batch
    broken = (1 + LENGTHS["b.wav"] // 160) // 4  # frames of b.wav's latents

    def encode_batch(model, waves, features):
        return [
            z.fill_(float("nan")) if len(z) == broken else z for z in real(model, waves, features)
        ]

    monkeypatch.setattr(extract_module, "encode_batch", encode_batch)
    out = tmp_path / "out"
    assert _extract(folder, out, tiny_tokenizer_dir) == 1
    err = capsys.readouterr().err
    assert "error: row 1: NaN or infinite values in the latents" in err
    assert datasets.load_from_disk(str(out))["id"] == ["a", "c"]
    (entry,) = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert entry["index"] == 1 and "NaN or infinite" in entry["error"]


def test_full_disk_ends_extract_with_one_line_and_no_partial_shard(
    folder, tmp_path, tiny_tokenizer_dir, capsys, monkeypatch
):
    import pyarrow as pa

    def new_stream(*args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left")

    monkeypatch.setattr(pa.ipc, "new_stream", new_stream)
    out = tmp_path / "out"
    assert _extract(folder, out, tiny_tokenizer_dir) == 1
    err = capsys.readouterr().err
    assert "error: disk full writing" in err and "run the same command with --resume" in err
    assert not list(out.glob("data-*")) and not list(out.glob(".*.tmp"))


def test_extract_removes_temporaries_a_killed_run_left(folder, tmp_path, tiny_tokenizer_dir):
    out = tmp_path / "out"
    assert _extract(folder, out, tiny_tokenizer_dir) == 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = [
        out / f".errors.jsonl.{child.pid}.0123abcd.tmp",
        out / ".progress" / f".data-00000-of-00001.json.{child.pid}.0123abcd.tmp",
    ]
    for path in stale:
        path.write_text("half")
    assert _extract(folder, out, tiny_tokenizer_dir, "--resume") == 0
    assert not any(p.exists() for p in stale)


def test_embed_refuses_nan_embeddings(tmp_path, folder, tiny_tokenizer, capsys):
    model = copy.deepcopy(tiny_tokenizer)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    out = tmp_path / "emb"
    assert main(["embed", str(folder), "-o", str(out), "--model", str(tmp_path / "nan")]) == 1
    err = capsys.readouterr().err
    assert err.count("NaN or infinite values in the embedding") == 3
    assert "embed: 0 written, 3 failed" in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
