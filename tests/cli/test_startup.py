"""`sonotok --help` and `sonotok COMMAND --help` stay light: building the parser imports no
model, metric or corpus code and not torch (each command imports those when it runs)."""

from __future__ import annotations

import json
import subprocess
import sys

# What a parser must not need (benchmarks/cli_startup.py measures the same).
HEAVY = (
    "torch",
    "numpy",
    "transformers",
    "diffusers",
    "datasets",
    "accelerate",
    "sonotok.tokenizer",
    "sonotok.tokenizer.model",
    "sonotok.tokenizer.semantic",
    "sonotok.generation",
    "sonotok.generation.dit",
    "sonotok.generation.audiogen",
    "sonotok.evaluation",
    "sonotok.evaluation.speech",
    "sonotok.evaluation.quality",
    "sonotok.corpus",
    "sonotok.corpus.speech",
    "sonotok.enhancement",
    "sonotok.enhancement.denoiser",
    "sonotok.extraction",
)

PROBE = """
import argparse, contextlib, io, json, sys
from sonotok.cli import build_parser, main

def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [*prefix, name]
                yield from commands(sub, (*prefix, name))

heavy = json.loads(sys.argv[1])
report = []
for argv in [["--help"]] + [[*c, "--help"] for c in commands(build_parser())]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit:
            pass
    report.append({
        "argv": argv,
        "usage": out.getvalue().startswith("usage: sonotok"),
        "heavy": [m for m in heavy if m in sys.modules],
    })
print(json.dumps(report))
"""


def test_help_of_every_command_imports_no_model_metric_corpus_or_torch():
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    names = {" ".join(r["argv"][:-1]) for r in report}
    assert {"", "encode", "decode", "extract", "probe", "eval reconstruct", "generate"} <= names
    assert {"train tokenizer", "train semantic", "train generation", "train enhancement"} <= names
    assert {"enhance", "corpus make", "demo", "embed"} <= names
    for r in report:
        assert r["usage"], f"sonotok {' '.join(r['argv'])} printed no usage"
        assert r["heavy"] == [], f"sonotok {' '.join(r['argv'])} imported {r['heavy']}"


def test_constants_spelled_in_the_parser_match_the_library():
    from sonotok.cli.extract import LATENT_DTYPES
    from sonotok.cli.generate import DEFAULT_CROSSFADE
    from sonotok.extraction import extract
    from sonotok.generation import splice

    assert LATENT_DTYPES == tuple(extract.LATENT_DTYPES)
    assert DEFAULT_CROSSFADE == splice.DEFAULT_CROSSFADE
