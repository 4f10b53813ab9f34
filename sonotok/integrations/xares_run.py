"""`python -m sonotok.integrations.xares_run ENCODER.py TASK.py ... [--max-jobs N ...]`: X-ARES's own
`python -m xares.run`, made to start in sonotok's environment.

X-ARES (pip install --no-deps xares==0.1.3, plus `pip install "sonotok[xares]"` for the
packages it imports) imports torchaudio, whose PyPI wheels do not import beside the CPU torch
wheel. When `import torchaudio` fails, this puts sonotok/xares_compat/ first on sys.path: a
stand-in `torchaudio` with the two calls X-ARES makes (load, functional.resample) on soundfile
and soxr. sys.path travels to X-ARES's spawned worker processes, so they see it too. With a
working torchaudio nothing is changed and this equals `python -m xares.run`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import runpy
import sys
from pathlib import Path

COMPAT_DIR = Path(__file__).parent / "xares_compat"
# What xares.run imports at start-up, and the distribution that provides each module.
XARES_IMPORTS = {
    "xares": "xares==0.1.3 (pip install --no-deps xares==0.1.3)",
    "loguru": "loguru",
    "ignite": "pytorch-ignite",
    "webdataset": "webdataset",
    "braceexpand": "braceexpand",
    "jiwer": "jiwer",
    "pandas": "pandas",
    "sklearn": "scikit-learn",
    "transformers": "transformers",
}


def missing_packages() -> list[str]:
    """Distributions X-ARES needs that are not installed (empty when it can start)."""
    return [
        dist for module, dist in XARES_IMPORTS.items() if importlib.util.find_spec(module) is None
    ]


def torchaudio_imports() -> bool:
    """True when the real torchaudio imports here; a failed import leaves nothing behind."""
    if importlib.util.find_spec("torchaudio") is None:
        return False
    try:
        importlib.import_module("torchaudio")
    except Exception:  # OSError from its CUDA-linked extension, ImportError, ...
        for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
            del sys.modules[name]
        return False
    return True


def use_torchaudio_stand_in() -> None:
    """Make `import torchaudio` find sonotok's stand-in, here and in spawned workers."""
    sys.path.insert(0, str(COMPAT_DIR))
    paths = [str(COMPAT_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)


def main(argv: list[str] | None = None) -> int:
    missing = missing_packages()
    if missing:
        print(
            f"error: X-ARES needs {', '.join(missing)}; install them with `pip install "
            '--no-deps xares==0.1.3` and `pip install "sonotok[xares]"` (or run setup.sh)',
            file=sys.stderr,
        )
        return 2
    if not torchaudio_imports():
        use_torchaudio_stand_in()
    sys.argv = ["xares.run", *(sys.argv[1:] if argv is None else argv)]
    try:
        runpy.run_module("xares.run", run_name="__main__", alter_sys=True)
    except SystemExit as done:  # argparse --help / usage errors
        return done.code if isinstance(done.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
