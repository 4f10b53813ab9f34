"""Lay the sources out as the installed package would be (for tools that walk a package folder).

pyproject maps `sonotok.tokenizer` → tokenizer/, `sonotok.generation` → generation/, ...; an
editable install resolves those through an import hook, but tools such as import-linter (grimp)
and the start-up benchmark walk one folder per package. `package_tree(source, into)` copies each
mapped folder to its package path under `into` and returns `into`, ready for PYTHONPATH.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tomllib


def package_tree(source: Path, into: Path) -> Path:
    project = tomllib.loads((source / "pyproject.toml").read_text())
    mapping = project["tool"]["setuptools"].get("package-dir", {"sonotok": "sonotok"})
    for package, folder in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        shutil.copytree(
            source / folder,
            into / package.replace(".", "/"),
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.safetensors", "*.wav"),
        )
    return into
