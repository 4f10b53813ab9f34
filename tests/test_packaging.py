"""The installed layout: folders mapped to sonotok.* subpackages, no generic top-level names."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_subpackages_map_to_folders_and_no_generic_top_level_names(tmp_path):
    code = (
        "import importlib.util, sonotok, sonotok.tokenizer, sonotok.generation, sonotok.enhancement, sonotok.evaluation\n"
        "print(sonotok.tokenizer.__file__)\n"
        "print([n for n in ('tokenizer', 'generation', 'enhancement', 'evaluation') if importlib.util.find_spec(n)])\n"
        "from sonotok import AudioTokenizer; print(AudioTokenizer.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    lines = out.stdout.splitlines()
    assert Path(lines[0]).resolve() == ROOT / "tokenizer" / "__init__.py"
    assert lines[1] == "[]"
    assert lines[2] == "sonotok.tokenizer.model"


def test_every_source_package_is_listed_for_installation():
    """A subpackage missing from pyproject's list works in editable installs but vanishes from wheels."""
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, mapping = set(project["packages"]), project["package-dir"]
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((package, *parts)) in listed, f"{init.parent} is not installed"


def test_wheel_ships_the_bundled_models_and_demo_clips(tmp_path):
    """`pip install sonotok` (not only editable installs) must carry sonotok-mini. Built from a
    copy of the source files, so no build/ folder is left in (or reused from) the checkout."""
    import shutil
    import zipfile

    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    source = tmp_path / "src"
    for name in listed:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path / "dist")],
        check=True,
    )  # fmt: skip
    names = set(zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).namelist())
    mini = "sonotok/mini/"
    for path in (
        "tokenizer/config.json",
        "tokenizer/model.safetensors",
        "tokenizer/README.md",
        "denoiser/config.json",
        "denoiser/model.safetensors",
        "generation/pipeline.json",
        "generation/dit/model.safetensors",
        "generation/scheduler/scheduler_config.json",
        "examples/noisy/speech/speech-000003.wav",
    ):
        assert mini + path in names, path
