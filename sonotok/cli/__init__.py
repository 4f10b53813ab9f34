"""The `sonotok` command line: one subcommand per user task.

Each module of this package adds its commands through `register(subparsers)`; this module
only assembles them. Nothing outside the package imports it. Parsing is light: a command
module imports only argparse, the standard library and light core modules at module level
(options, errors, defaults), and the heavy ones (torch, models, metrics, datasets) inside the
function that runs the command, so `sonotok --help` and `sonotok COMMAND --help` load no
model, metric or corpus code and not torch (checked by tests/cli/test_startup.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sonotok import __version__
from sonotok.core.errors import SonotokError
from sonotok.core.options import OptionParser

# Modules that contribute subcommands, in the order `--help` lists them.
_COMMAND_MODULES = (
    "sonotok.cli.tokenize",
    "sonotok.cli.train_tokenizer",
    "sonotok.cli.train_codec",
    "sonotok.cli.corpus",
    "sonotok.cli.train_semantic",
    "sonotok.cli.train_semanticodec",
    "sonotok.cli.extract",
    "sonotok.cli.probe",
    "sonotok.cli.evaluate",
    "sonotok.cli.compare",
    "sonotok.cli.generate",
    "sonotok.cli.enhance",
    "sonotok.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OptionParser(
        prog="sonotok",
        description="Audio latents at 25 Hz: encode, decode, reconstruct, and the tools built on them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SonotokError as err:  # bad option, config, model or data from any package: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
