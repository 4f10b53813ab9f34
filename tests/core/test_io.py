"""sonotok.core.io: atomic writes with the umask's permissions, disk-full errors, stale
temporaries and the finiteness check every model output passes."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sonotok.core.errors import DiskFullError, ModelOutputError
from sonotok.core.io import (
    atomic_output,
    atomic_path,
    atomic_write,
    check_finite,
    remove_stale_temporaries,
    umask,
)


@pytest.fixture(params=[0o022, 0o027, 0o002])
def process_umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _write_latents(path):
    from sonotok.core.latents import LatentFile

    LatentFile(torch.ones(3, 4)).save(path)


def _write_wav(path):
    from sonotok.core.audio import write_audio

    write_audio(path, np.zeros(1600, np.float32), 16000)


def _write_json(path):
    from sonotok.core.io import write_json

    write_json(path, {"a": 1})


def _write_model(path):
    from sonotok.core.hub import write_pretrained

    write_pretrained(path.parent, {"a": 1}, {"w": torch.ones(2)})


def _write_embedding(path):
    from sonotok.cli.extract import save_embedding

    save_embedding(path, torch.ones(4), {"source": "x.wav"})


@pytest.mark.parametrize(
    "write, name",
    [
        (lambda p: atomic_write(p, lambda tmp: tmp.write_text("x")), "plain.txt"),
        (_write_latents, "a.safetensors"),
        (_write_wav, "a.wav"),
        (_write_json, "config.json"),
        (_write_model, "model.safetensors"),
        (_write_embedding, "e.npy"),
    ],
)
def test_outputs_get_the_permissions_open_would_give(tmp_path, process_umask, write, name):
    target = tmp_path / "out" / name
    write(target)
    assert target.is_file()
    assert target.stat().st_mode & 0o777 == 0o666 & ~process_umask
    assert umask() == process_umask
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_temporary_name_carries_the_process_id(tmp_path):
    tmp = atomic_path(tmp_path / "x.wav")
    assert tmp.parent == tmp_path and tmp.name.startswith(f".x.wav.{os.getpid()}.")
    assert tmp.suffix == ".tmp" and tmp.stat().st_size == 0


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(ValueError, match="boom"):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise ValueError("boom")
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.json"]


@pytest.mark.parametrize(
    "err",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        # safetensors' own exception type, as it reports a full disk
        type("SafetensorError", (Exception,), {})(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        ),
    ],
)
def test_full_disk_becomes_one_clear_error_and_no_partial_file(tmp_path, err):
    target = tmp_path / "a.wav"

    def write(tmp):
        tmp.write_bytes(b"partial")
        raise err

    with pytest.raises(DiskFullError) as info:
        atomic_write(target, write)
    assert info.value.errno in (errno.ENOSPC, errno.EDQUOT)
    assert str(info.value).endswith(f"writing {target}") and info.value.filename == str(target)
    assert os.listdir(tmp_path) == []


def test_other_write_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "a", lambda tmp: (_ for _ in ()).throw(PermissionError("no")))
    assert os.listdir(tmp_path) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_killed_runs_are_removed_and_nothing_else(tmp_path):
    dead = _dead_pid()
    names = {
        f".a.wav.{dead}.0123abcd.tmp": False,  # ours, from a killed process
        ".b.safetensors.k2j_9xq1.tmp": False,  # ours, mkstemp name of older versions
        f".c.wav.{os.getpid()}.0123abcd.tmp": True,  # a write in progress (this process)
        ".cache.whatever.tmp": True,  # someone else's hidden file
        ".notes.tmp": True,
        "d.tmp": True,
        "e.wav": True,
    }
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries([tmp_path, tmp_path / "missing"])
    assert sorted(p.name for p in removed) == sorted(n for n, keep in names.items() if not keep)
    assert sorted(os.listdir(tmp_path)) == sorted(n for n, keep in names.items() if keep)


def test_check_finite_names_the_input_and_counts_bad_values():
    check_finite(torch.zeros(10), "audio", "a.wav")
    check_finite(np.arange(5), "codes", "a.wav")  # integers are always finite
    wave = torch.zeros(100)
    wave[3], wave[50] = float("nan"), float("inf")
    with pytest.raises(
        ModelOutputError, match=r"a\.wav: NaN or infinite values in the audio \(2 of 100\)"
    ):
        check_finite(wave, "audio", "a.wav")
    with pytest.raises(ModelOutputError, match=r"\(1 of 6\)"):
        check_finite(np.array([[0, 1, 2], [3, np.nan, 5]], np.float32), "latents", "b.wav")


def test_report_json_is_plain_readable(tmp_path, process_umask):
    from sonotok.evaluation.report import write_text_atomic

    write_text_atomic(tmp_path / "r.json", json.dumps({"x": 1}))
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o666 & ~process_umask
