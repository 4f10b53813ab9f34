"""Interrupted extraction: SIGTERM mid-run, `--resume`, and the result equals an
uninterrupted run row for row; `accelerate launch` with 2 processes gives exactly
the rows of one process; and a resume that would load another model or read a changed
source listing is refused without touching what was written."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok import defaults
from sonotok.cli.extract import main
from sonotok.core.sources import AudioSource, open_audio_source
from sonotok.extraction import extract as extract_module
from sonotok.extraction.extract import source_listing

NUM_ROWS = 23
SHARD = 3  # → 8 shards, the last one short

# Runs `sonotok extract` with a pause before each model call, so a signal from the test
# lands while the process is in the middle of the job.
RUNNER = """
import sys, time
from sonotok.cli import extract as extract_cli
from sonotok.extraction import extract

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


# ---- a resume that is not the same job is refused ---------------------------------------
FILES = [f"a{i}.wav" for i in range(6)]  # 2 per shard → 3 shards


@pytest.fixture
def wav_folder(tmp_path, tone) -> Path:
    folder = tmp_path / "wavs"
    folder.mkdir()
    for i, name in enumerate(FILES):
        sf.write(folder / name, tone(4000 + 800 * i, seed=i), 16000)
    return folder


def small_args(source, out, *extra) -> list[str]:
    base = ["extract", str(source), "-o", str(out), "--shard-size", "2", "--batch-size", "2"]
    return [*base, "--device", "cpu", *extra]


def run_until_killed(argv: list[str]) -> None:
    """Run `sonotok extract` in this process and stop it, as a kill would, at its second model
    call: the first shard is finished (written, marker and all), the rest not started."""
    original = extract_module.encode_batch
    calls = []

    def stopping(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(*a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(extract_module, "encode_batch", stopping)
        with pytest.raises(KeyboardInterrupt):
            main(argv)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (hidden ones too) → its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_interrupted(out: Path) -> None:
    markers = sorted(p.name for p in (out / ".progress").glob("*.json"))
    assert markers == ["data-00000-of-00003.json"] and not (out / "state.json").exists()


def plant_official_tokenizer(cache: Path, model_dir: str) -> None:
    """The official tokenizer 'downloaded' into the offline cache: another model (here the
    32-d tiny one) becomes the default, as when `hf download` ran meanwhile."""
    repo = cache / f"models--{defaults.OFFICIAL['tokenizer'].replace('/', '--')}"
    revision = "1" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(model_dir) / name, snapshot / name)


def test_resume_refuses_when_the_default_model_changed(
    empty_hub_cache, wav_folder, tmp_path, tiny_tokenizer_dir, capsys
):
    out = tmp_path / "out"
    argv = small_args(wav_folder, out)  # no --model: the default, the bundled 256-d mini model
    run_until_killed(argv)
    assert_interrupted(out)
    plan = json.loads((out / "extract.json").read_text())
    mini = str(defaults.bundled("tokenizer"))
    assert plan["model"] == mini and plan["latent_dim"] == 256
    assert plan["model_weights"].startswith("files-sha256:") and plan["model_dtypes"] == ["float32"]
    written = files_of(out)

    plant_official_tokenizer(empty_hub_cache, tiny_tokenizer_dir)
    assert defaults.default_model("tokenizer").name == defaults.OFFICIAL["tokenizer"]
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"was started with model {mini!r} (256-d" in err
    assert f"this run loads {defaults.OFFICIAL['tokenizer']!r} (32-d" in err
    assert "mix latents of two models" in err and f"--model {mini}" in err
    assert "Traceback" not in err and err.count("error: ") == 1
    assert files_of(out) == written  # nothing written before is changed or lost

    # The same weights named explicitly: the resume goes on and equals one whole run.
    assert main([*argv, "--resume", "--model", mini]) == 0
    assert main([*small_args(wav_folder, tmp_path / "whole"), "--model", mini]) == 0
    resumed = datasets.load_from_disk(str(out)).with_format("torch")
    whole = datasets.load_from_disk(str(tmp_path / "whole")).with_format("torch")
    assert resumed["path"] == whole["path"] == FILES
    for a, b in zip(resumed, whole):
        assert a["latents"].shape[1] == 256
        torch.testing.assert_close(a["latents"], b["latents"], atol=1e-6, rtol=1e-6)


def test_resume_refuses_other_weights_under_the_same_name(
    wav_folder, tmp_path, tiny_tokenizer, capsys
):
    model_dir = tmp_path / "model"
    tiny_tokenizer.save_pretrained(model_dir)
    out = tmp_path / "out"
    argv = small_args(wav_folder, out, "--model", str(model_dir))
    run_until_killed(argv)
    assert_interrupted(out)
    before = json.loads((out / "extract.json").read_text())["model_weights"]
    written = files_of(out)

    retrained = copy.deepcopy(tiny_tokenizer)  # same name, same width, other weights
    with torch.no_grad():
        retrained.acoustic.patch_embed.weight.add_(1e-3)
    retrained.save_pretrained(model_dir)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"(32-d, float32, weights {before.split(':')[1][:12]})" in err
    assert "mix latents of two models" in err
    assert "--model" not in err.split("nothing was done.")[1]  # same name: no --model hint
    assert files_of(out) == written


CHANGES = {  # what happens to the source folder → what the refusal must say
    "added": (
        lambda f: sf.write(f / "new.wav", np.zeros(4000, "float32"), 16000),
        ["1 file added ('new.wav')"],
    ),
    "removed": (lambda f: (f / "a3.wav").unlink(), ["1 file removed ('a3.wav')"]),
    "renamed": (
        lambda f: (f / "a3.wav").rename(f / "b3.wav"),
        ["1 file added ('b3.wav')", "1 file removed ('a3.wav')"],
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_resume_refuses_a_changed_source_listing(
    change, wav_folder, tmp_path, tiny_tokenizer_dir, capsys
):
    out = tmp_path / "out"
    argv = small_args(wav_folder, out, "--model", tiny_tokenizer_dir)
    run_until_killed(argv)
    assert_interrupted(out)
    assert (out / ".progress" / "source.jsonl").read_text().split() == [f'"{n}"' for n in FILES]
    written = files_of(out)
    kept = files_of(wav_folder)

    edit, expected = CHANGES[change]
    edit(wav_folder)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"the source {wav_folder} changed since this extraction started" in err
    for fragment in expected:
        assert fragment in err
    assert "lose or duplicate rows" in err and err.count("error: ") == 1
    assert files_of(out) == written

    # The source restored: the resume finishes with every file once, in order.
    shutil.rmtree(wav_folder)
    wav_folder.mkdir()
    for name, raw in kept.items():
        (wav_folder / name).write_bytes(raw)
    assert main([*argv, "--resume"]) == 0
    assert datasets.load_from_disk(str(out))["path"] == FILES


def test_unnamed_dataset_rows_are_listed_by_fingerprint(tmp_path):
    """A dataset whose rows have no path or id: the listing is its fingerprint and length,
    the same each time it is opened, different once a row is added."""

    def saved(n: int) -> Path:
        audio = [{"bytes": bytes([i]), "path": None} for i in range(n)]  # never decoded here
        ds = datasets.Dataset.from_dict({"audio": audio, "caption": [f"c{i}" for i in range(n)]})
        folder = tmp_path / f"ds{n}"
        ds.cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(folder))
        return folder

    small, large = saved(3), saved(4)
    first, items = source_listing(open_audio_source(small))
    again, _ = source_listing(open_audio_source(small))
    other, _ = source_listing(open_audio_source(large))
    assert items is None and first["by"] == "fingerprint" and first["rows"] == 3
    assert first == again
    assert other["rows"] == 4 and other["digest"] != first["digest"]
    named = AudioSource(datasets.load_from_disk(str(small)), "audio", None, "caption", "x")
    listing, names = source_listing(named)
    assert names == ["c0", "c1", "c2"] and listing["by"] == "caption"
