"""The command tests use the fixtures of the packages they drive (tiny pipelines, speech)."""

import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _load(area: str):
    spec = importlib.util.spec_from_file_location(f"_fixtures_{area}", TESTS / area / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


for _area in ("generation", "enhancement", "evaluation"):
    _module = _load(_area)
    globals().update(
        {name: value for name, value in vars(_module).items() if not name.startswith("__")}
    )
