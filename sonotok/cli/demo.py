"""`sonotok demo`: the command line of `sonotok.demo` (reconstruct, enhance and generate on the
bundled example clips, offline, into one HTML report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sonotok.cli.common import add_device_option, add_output_options
from sonotok.core import options


def run(args: argparse.Namespace) -> int:
    from sonotok.demo import run as run_demo

    return run_demo(args)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="reconstruct, enhance and generate on bundled clips; writes an HTML report",
        description="Run sonotok's three main jobs on the example clips shipped with the package "
        "— tokenizer reconstruction, speech enhancement of a noisy clip, text-to-audio generation "
        "— and score them with the evaluation toolkit. Works offline: without --tokenizer / "
        "--denoiser / --generator it uses the official models if they are in the local Hugging "
        "Face cache, else the bundled sonotok-mini models, and says which. Open "
        "OUTPUT/report.html in a browser to listen.",
        epilog="examples:\n"
        "  sonotok demo -o out/demo\n"
        "  sonotok demo -o out/demo --prompt 'A cello melody in D minor.' --steps 50\n"
        "  sonotok demo -o out/demo --tokenizer mispeech/dashengtokenizer --overwrite",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_options(
        p,
        "folder for the report and audio (default: %(default)s)",
        required=False,
        default=Path("sonotok-demo"),
        overwrite="replace OUTPUT even if it holds files the demo did not write",
        type=Path,
    )
    p.add_argument("--tokenizer", default=None, help="tokenizer folder or hub id")
    p.add_argument("--denoiser", default=None, help="enhancement model folder or hub id")
    p.add_argument("--generator", default=None, help="generation pipeline folder or hub id")
    p.add_argument(
        "--prompt",
        action="append",
        default=None,
        help="text prompt (repeatable; default: four prompts across speech, music and sounds)",
    )
    p.add_argument(
        "--seconds", type=options.seconds, default=4.0, help="generated length (default 4)"
    )
    p.add_argument(
        "--steps", type=options.positive_int, default=25, help="sampling steps (default 25)"
    )
    p.add_argument(
        "--cfg",
        type=options.guidance_scale,
        default=3.0,
        help="guidance scale, 0 to 100 (default 3)",
    )
    p.add_argument("--seed", type=options.seed, default=0, help="generation seed (default 0)")
    add_device_option(p)
    p.set_defaults(func=run)
