"""The layer rules hold: import-linter's contracts in pyproject.toml, on the package as installed."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _package_tree():
    spec = importlib.util.spec_from_file_location("package_tree", ROOT / "scripts/package_tree.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.package_tree


def test_import_contracts_hold(tmp_path):
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]' installs import-linter")
    tree = _package_tree()(ROOT, tmp_path / "tree")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "tree" / "pyproject.toml")
    done = subprocess.run(
        [lint, "--no-cache", "pyproject.toml"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and " KEPT" in done.stdout
