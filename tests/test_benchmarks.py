"""Every benchmark script answers --help without its reference code, and runs small."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def test_benchmarks_folder_is_found():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_help_works_without_reference_code(script):
    proc = run(str(script), "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    if 'if __name__ == "__main__"' in script.read_text():  # memory.py is a helper module
        assert proc.stdout.startswith("usage:"), proc.stdout[:200]
        assert "/work/" not in proc.stdout  # no machine-specific default paths


def test_generation_speed_runs_to_the_end_on_a_tiny_config():
    """It used to end in AttributeError: 'Namespace' object has no attribute 'official'."""
    proc = run(
        "benchmarks/generation_speed.py", "--config", "configs/generation/tiny.yaml",
        "--device", "cpu", "--dtype", "fp32", "--batch-sizes", "1", "--seconds", "0.4",
        "--steps", "1", "--repeats", "1", "--train-steps", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"sample_seconds": {"batch_1":' in proc.stdout.splitlines()[-1]


def test_reference_locations_are_options_checked_up_front(tmp_path):
    missing = str(tmp_path / "missing")
    proc = run(
        "benchmarks/enhance_speed.py", "--reference-python", missing, "--reference-dir", missing
    )
    assert proc.returncode == 2 and f"--reference-python {missing}: no such" in proc.stderr
    proc = run("benchmarks/eval_reference_parity.py", "--reference-packages", str(tmp_path))
    assert proc.returncode == 2
    assert "reference packages not importable: panns_inference" in proc.stderr
    assert "--reference-packages DIR" in proc.stderr
