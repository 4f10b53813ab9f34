"""Check the import-linter contracts in pyproject.toml: `python scripts/lint_imports.py`.

Plain `lint-imports` cannot see sonotok.tokenizer & co. (setuptools maps them from other
folders, which grimp does not follow), so this lays the package out as installed in a
temporary folder (`package_tree`) and runs lint-imports there. Exit status: lint-imports'.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from package_tree import package_tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        print("error: lint-imports is not installed; pip install -e '.[dev]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tree = package_tree(ROOT, Path(tmp))
        shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
        env = {**os.environ, "PYTHONPATH": str(tree)}
        return subprocess.run([lint, "--no-cache", "pyproject.toml"], cwd=tree, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
