"""``sonotok compare DATA --model A --model B ... -o DIR``: the paper's comparison table.

Exit status: 0 when every tokenizer scored every clip; 1 when a tokenizer could not be loaded
or some clips failed (one line each on stderr, the rest finished and reported); 2 for bad usage.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sonotok.cli.common import add_device_option, add_output_options, add_resume_option
from sonotok.core import options
from sonotok.core.errors import ConfigError

DATA_HELP = (
    "the data suite: a folder whose sub-folders are domains (speech/, music/, sound/ ... as "
    "`sonotok corpus make` writes them), a manifest with 'path' and 'domain', or a dataset"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare tokenizers: reconstruction, probe accuracy and cost in one table",
        description="Compare several tokenizers the way the DashengTokenizer paper does: "
        "reconstruction per domain at 16 kHz (speech: PESQ, STOI, speaker similarity, DNSMOS, "
        "mel/STFT distance; other domains: mel/STFT distance), linear and kNN probe accuracy "
        "per labelled task, and cost (parameters, frame rate, bitrate or latent values/s, "
        "encode/decode real-time factor). Writes DIR/results.csv, results.md and report.html; "
        "per-clip results are cached under DIR/cache so --resume skips finished work. Several "
        "GPUs: `accelerate launch --multi_gpu --num_processes N -m sonotok.cli compare ...` "
        "splits the clips between the processes.",
    )
    parser.add_argument("data", help=DATA_HELP)
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL",
        help="a tokenizer folder or hub id (any registered family); repeat for each tokenizer",
    )
    parser.add_argument(
        "--tasks",
        default="domain",
        help="comma-separated probe tasks: 'domain' (the data's sub-folders or domain column), "
        "a dataset column (the synthetic corpus has language, voice, instrument, event ...) or "
        "a column of --labels (default: %(default)s; 'none' for no probes)",
    )
    parser.add_argument(
        "--labels",
        help=".csv/.tsv/.jsonl with an 'id' column and one column per label (e.g. language)",
    )
    parser.add_argument(
        "--folds", type=options.positive_int, default=3, help="probe folds (default: 3)"
    )
    parser.add_argument("--split", help="split of a dataset with several")
    parser.add_argument(
        "--no-speech-quality",
        dest="speech_quality",
        action="store_false",
        help="skip the model-based speech metrics (speaker similarity, DNSMOS): the slowest",
    )
    add_device_option(parser)
    add_output_options(parser, overwrite="discard the cached results in DIR and start over")
    add_resume_option(parser, checkpoint=False)
    parser.set_defaults(func=run)


def _labels(path: str | None, tasks: list[str]) -> dict[str, dict[str, str]]:
    """{task: {clip id: label}} from a labels file's columns named in --tasks."""
    if path is None:
        return {}
    from sonotok.core.sources import manifest_rows

    rows = manifest_rows(Path(path))
    if not rows or "id" not in rows[0]:
        raise ConfigError(f"{path}: needs an 'id' column and one column per task")
    return {t: {str(r["id"]): r[t] for r in rows} for t in tasks if t in rows[0]}


def _check_tasks(tasks: list[str], items, labels: dict, data: str) -> None:
    """Every task names labels somewhere (domain, the labels file or a dataset column)."""
    from sonotok.evaluation.compare import task_labels

    for task in tasks:
        if not task_labels(items, task, labels):
            raise ConfigError(
                f"--tasks {task}: no clip of {data} has a {task!r} label; use 'domain' (a folder "
                "with sub-folders), a column of the dataset, or pass --labels FILE with that column"
            )


def run(args) -> int:
    out = Path(args.output)
    cache = out / "cache"
    if cache.exists() and not (args.resume or args.overwrite):
        raise ConfigError(
            f"{out} holds a comparison already; pass --resume to continue it or --overwrite "
            "to start over"
        )
    tasks = [] if args.tasks.strip() == "none" else [t for t in args.tasks.split(",") if t]
    labels = _labels(args.labels, tasks)

    import torch
    from accelerate import PartialState

    from sonotok.core.options import resolve_device
    from sonotok.evaluation.compare import compare
    from sonotok.evaluation.compare_report import write_outputs
    from sonotok.evaluation.data import discover

    # Like `extract`: processes of `accelerate launch` share the clips; without GPUs (or with
    # --device cpu) they coordinate over gloo on the CPU.
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    device = state.device if state.num_processes > 1 else resolve_device(args.device)
    state.wait_for_everyone()  # every process checked the folder before the main one clears it
    if args.overwrite and cache.exists() and state.is_main_process:
        shutil.rmtree(cache)
        shutil.rmtree(out / "audio", ignore_errors=True)
    state.wait_for_everyone()
    items = discover(args.data, split=args.split)
    if not items:
        raise ConfigError(f"{args.data}: holds no audio; pass a folder with audio files")
    _check_tasks(tasks, items, labels, args.data)
    comparison = compare(
        args.model, items, out, tasks=tasks, labels=labels, device=device,
        folds=args.folds, say=lambda line: print(line, file=sys.stderr),
        speech_quality=args.speech_quality, rank=state.process_index,
        world=state.num_processes, barrier=state.wait_for_everyone,
    )  # fmt: skip
    if comparison is None:  # not the main process: its clips are in the cache
        return 0
    comparison.notes.append(
        f"{len(items)} clips of {args.data} at 16 kHz on {device}; probes: {args.folds}-fold "
        "linear (X-ARES schedule) and kNN accuracy on mean-pooled latents."
    )
    paths = write_outputs(comparison, out)
    print(paths["results.md"].read_text())
    for result in comparison.results:
        done = len(result.rows) - result.computed
        print(f"{result.name}: {result.computed} clips computed, {done} from the cache",
              file=sys.stderr)  # fmt: skip
    print(f"wrote {paths['results.csv']}, {paths['results.md']}, {paths['report.html']}",
          file=sys.stderr)  # fmt: skip
    return 1 if comparison.errors else 0
