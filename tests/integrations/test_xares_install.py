"""The README's X-ARES path starts after setup.sh: every package xares.run imports is there,
`python -m sonotok.integrations.xares_run` runs X-ARES (worker processes included) on the CPU torch wheel,
and the torchaudio stand-in matches soundfile / soxr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from sonotok.integrations import xares_run

ROOT = Path(__file__).resolve().parents[2]


def run_xares(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", "sonotok.integrations.xares_run", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_every_package_xares_imports_is_installed_and_declared():
    assert xares_run.missing_packages() == []
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = " ".join(project["optional-dependencies"]["xares"])
    for module, dist in xares_run.XARES_IMPORTS.items():
        if module != "xares":  # installed --no-deps by setup.sh: it pins torchaudio
            assert dist in extra, dist
    assert "torchaudio" not in extra and "torch" not in extra.replace("pytorch-ignite", "")
    assert "xares" in project["optional-dependencies"]["dev"][0]
    assert "--no-deps xares==0.1.3" in (ROOT / "setup.sh").read_text()


def test_xares_run_help(tmp_path):
    proc = run_xares("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "encoder_py" in proc.stdout and "--max-jobs" in proc.stdout


def test_xares_workers_start_and_read_a_task(tmp_path):
    """X-ARES spawns worker processes that re-import xares.run (and so torchaudio); a disabled
    task is loaded in a worker and skipped, with nothing to download."""
    (tmp_path / "off_task.py").write_text(
        "import torchaudio\nfrom xares.task import TaskConfig\n\n\n"
        "def off_config(encoder):\n"
        "    print('worker torchaudio', torchaudio.__version__, flush=True)\n"
        "    return TaskConfig(name='off', disabled=True, encoder=encoder)\n"
    )
    (tmp_path / "enc.py").write_text("from sonotok.integrations.xares import SonotokEncoder\n")
    proc = run_xares("enc.py", "off_task.py", "--max-jobs", "1", "--to-stage", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout + proc.stderr  # X-ARES's logger writes to stdout
    assert "Traceback" not in output, output[-2000:]
    assert "Task off is disabled" in output and "Stage 0 completed" in output
    assert "worker torchaudio 0.0+sonotok.xares" in output


def test_torchaudio_stand_in_matches_soundfile_and_soxr(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(xares_run.COMPAT_DIR))
    for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
        monkeypatch.delitem(sys.modules, name)
    import torchaudio

    assert Path(torchaudio.__file__).parent == xares_run.COMPAT_DIR / "torchaudio"
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((22050, 2))).astype(np.float32)
    sf.write(tmp_path / "a.flac", stereo, 22050)
    wave, rate = torchaudio.load(str(tmp_path / "a.flac"))
    assert rate == 22050 and wave.shape == (2, 22050) and wave.dtype == torch.float32
    np.testing.assert_allclose(wave.numpy().T, sf.read(tmp_path / "a.flac")[0], atol=1e-4)

    out = torchaudio.functional.resample(wave, 22050, 16000)
    assert out.shape == (2, 16000) and out.dtype == torch.float32
    want = soxr.resample(wave.numpy().T, 22050, 16000).T
    np.testing.assert_allclose(out.numpy(), want, atol=1e-6)
    assert torchaudio.functional.resample(wave, 16000, 16000) is wave
