"""Interrupted extraction: SIGTERM mid-run, `--resume`, and the result equals an
uninterrupted run row for row; and `accelerate launch` with 2 processes gives exactly
the rows of one process."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.tokenizer.extract_cli import main

NUM_ROWS = 23
SHARD = 3  # → 8 shards, the last one short

# Runs `sonotok extract` with a pause before each model call, so a signal from the test
# lands while the process is in the middle of the job.
RUNNER = """
import sys, time
from sonotok.tokenizer import extract, extract_cli

delay = float(sys.argv[1])
original = extract.encode_batch

def slow(*args, **kwargs):
    time.sleep(delay)
    return original(*args, **kwargs)

extract.encode_batch = slow
sys.exit(extract_cli.main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory, tone):
    rows = {"id": [], "audio": [], "caption": []}
    rng = np.random.default_rng(1)
    for i in range(NUM_ROWS):
        buf = io.BytesIO()
        sf.write(buf, tone(int(rng.integers(6000, 30000)), seed=i), 16000, format="FLAC")
        rows["id"].append(f"utt{i:03d}")
        rows["audio"].append({"bytes": buf.getvalue(), "path": None})
        rows["caption"].append(f"sound {i}")
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))
    folder = tmp_path_factory.mktemp("resume_source") / "ds"
    ds.save_to_disk(str(folder))
    return folder


@pytest.fixture
def runner(tmp_path):
    path = tmp_path / "slow_extract.py"
    path.write_text(RUNNER)
    return path


def args(source, out, model_dir, *extra) -> list[str]:
    return [
        "extract",
        str(source),
        "-o",
        str(out),
        "--model",
        model_dir,
        "--shard-size",
        str(SHARD),
        "--batch-size",
        "2",
        "--device",
        "cpu",
        *extra,
    ]


def assert_same_rows(a_dir, b_dir):
    a = datasets.load_from_disk(str(a_dir))
    b = datasets.load_from_disk(str(b_dir))
    assert a["id"] == b["id"] == [f"utt{i:03d}" for i in range(NUM_ROWS)]  # each row once, in order
    assert a["caption"] == b["caption"]
    assert a["num_frames"] == b["num_frames"]
    for x, y in zip(a.with_format("torch"), b.with_format("torch")):
        torch.testing.assert_close(x["latents"], y["latents"], atol=1e-6, rtol=1e-6)


def test_sigterm_then_resume_equals_uninterrupted(source, runner, tmp_path, tiny_tokenizer_dir):
    reference = tmp_path / "reference"
    assert main(args(source, reference, tiny_tokenizer_dir)) == 0

    out = tmp_path / "interrupted"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(runner), "0.3", *args(source, out, tiny_tokenizer_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    first_marker = out / ".progress" / "data-00000-of-00008.json"
    deadline = time.monotonic() + 120
    while not first_marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the first shard never finished"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode != 0, log

    done = sorted(p.name for p in (out / ".progress").glob("*.json"))
    shards = sorted(p.name for p in out.glob("data-*.arrow"))
    assert 1 <= len(done) < 8, "the kill must land mid-run"
    assert [s.replace(".arrow", ".json") for s in shards] == done  # no shard without its marker
    assert not list(out.glob(".*.tmp")), "temporary files are removed on SIGTERM"
    assert not (out / "state.json").exists()  # not loadable as complete yet
    kept = out / "data-00000-of-00008.arrow"
    kept_mtime = kept.stat().st_mtime_ns

    assert main(args(source, out, tiny_tokenizer_dir, "--resume")) == 0
    assert kept.stat().st_mtime_ns == kept_mtime  # finished shards are not redone
    assert len(list(out.glob("data-*.arrow"))) == 8
    assert_same_rows(out, reference)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_two_processes_give_the_rows_of_one(
    source, runner, tmp_path, tiny_tokenizer_dir
):
    single = tmp_path / "single"
    assert main(args(source, single, tiny_tokenizer_dir)) == 0
    out = tmp_path / "two"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        # `--cpu` starts one process unless mpirun is installed; `--multi_gpu` starts them
        # through torchrun, and on a machine without GPUs they join over gloo on the CPU.
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(runner),
        "0",
        *args(source, out, tiny_tokenizer_dir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(2 process(es)" in result.stderr
    markers = sorted((out / ".progress").glob("*.json"))
    owners = [json.loads(m.read_text())["process"] for m in markers]
    assert owners == [k % 2 for k in range(8)]  # shard k done by process k mod 2
    assert_same_rows(out, single)
