"""How long `sonotok --help` (and `sonotok COMMAND --help`) takes, and what it imports.

Measures the working tree and, with `--reference REV`, a git revision of this repository in the
same run (each laid out as the installed package would be, in a temporary folder), and prints
wall time (median of `--repeats` fresh interpreters), the number of modules imported, and which
heavy modules (model, metric, corpus code; torch, transformers, diffusers, datasets) were loaded.

    python benchmarks/cli_startup.py --reference 6da883e
    python benchmarks/cli_startup.py --command encode --repeats 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from package_tree import package_tree  # noqa: E402

# Imports that a parser should not need: models, metrics, corpus synthesis, heavy libraries.
HEAVY = (
    "torch",
    "transformers",
    "diffusers",
    "datasets",
    "accelerate",
    "sonotok.tokenizer.model",
    "sonotok.tokenizer.semantic",
    "sonotok.corpus.speech",
    "sonotok.corpus.music",
    "sonotok.generation.audiogen",
    "sonotok.generation.dit",
    "sonotok.evaluation.speech",
    "sonotok.evaluation.quality",
    "sonotok.enhancement.denoiser",
)

PROBE = """
import io, json, sys, time, contextlib
before = set(sys.modules)
t = time.perf_counter()
from sonotok.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(ARGV)
    except SystemExit:
        pass
elapsed = time.perf_counter() - t
new = sorted(set(sys.modules) - before)
print(json.dumps({"seconds": elapsed, "modules": new}))
"""


def measure(tree: Path, argv: list[str], repeats: int) -> dict:
    code = PROBE.replace("ARGV", repr(argv))
    runs, walls = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "HOME": str(tree)},
            cwd=tree,
        )
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"probe failed in {tree}:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    modules = runs[-1]["modules"]
    return {
        "process_seconds": statistics.median(walls),
        "import_and_parse_seconds": statistics.median(r["seconds"] for r in runs),
        "modules": len(modules),
        "sonotok_modules": sum(m.startswith("sonotok") for m in modules),
        "heavy": [h for h in HEAVY if h in modules],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", metavar="REV", help="git revision to measure beside")
    parser.add_argument("--command", default=None, help="measure `sonotok COMMAND --help`")
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per tree")
    args = parser.parse_args()
    argv = [args.command, "--help"] if args.command else ["--help"]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"working tree": package_tree(ROOT, Path(tmp) / "current")}
        if args.reference:
            source = Path(tmp) / "reference-src"
            source.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.reference],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
            trees[args.reference] = package_tree(source, Path(tmp) / "reference")
        results = {name: measure(tree, argv, args.repeats) for name, tree in trees.items()}
    print(f"sonotok {' '.join(argv)}  (median of {args.repeats} fresh interpreters)")
    for name, r in results.items():
        print(
            f"  {name:>14}: process {r['process_seconds']:.2f} s, import+parse "
            f"{r['import_and_parse_seconds']:.2f} s, {r['modules']} modules "
            f"({r['sonotok_modules']} sonotok), heavy: {', '.join(r['heavy']) or 'none'}"
        )
    if args.reference:
        a, b = results["working tree"], results[args.reference]
        print(
            f"  ratio (working tree / {args.reference}): process "
            f"{a['process_seconds'] / b['process_seconds']:.2f}x, modules "
            f"{a['modules'] / max(b['modules'], 1):.2f}x"
        )


if __name__ == "__main__":
    main()
