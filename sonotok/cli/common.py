"""What every `sonotok` command shares: the option set, input → output planning, the per-file
batch runner and model loading.

One option set: `--model --device --dtype --batch-size -o/--output --overwrite --resume` are
defined here once, so they mean the same in every command and default the same (`--device
auto`, `--dtype fp32`, `--batch-size 8`). Parsing stays light: this module imports only the
standard library and light core modules at module level; torch, models and data libraries are
imported by the functions that run a command.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sonotok.core import options
from sonotok.core.errors import SonotokError
from sonotok.defaults import OFFICIAL

DTYPES = ("fp32", "bf16", "fp16")
DEFAULT_BATCH_SIZE = 8
TRAIN_HELP = "train a model: sonotok train WHAT --config FILE [--set KEY=VALUE ...]"


# ---- command groups ------------------------------------------------------------------------
def command_group(subparsers, name: str, help: str):
    """The sub-subparsers of a command several modules add to (e.g. `train`), created by
    whichever module registers first."""
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help, description=help)
        parser.set_defaults(func=lambda args, p=parser: p.print_help() or 2)
        parser._group = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT")
    return parser._group


# ---- the shared options --------------------------------------------------------------------
def add_model_option(parser, kind: str = "tokenizer", what: str | None = None) -> None:
    """--model: a hub id or folder; left out, the default model for `kind` (tokenizer,
    denoiser, generation). `what` replaces the opening words of the help."""
    what = what or f"{kind} hub id or local folder"
    parser.add_argument(
        "--model",
        default=None,
        help=f"{what} (default: {OFFICIAL[kind]} if it is in the local Hugging Face cache, "
        f"else the bundled offline sonotok-mini {kind})",
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """--device, checked at parse time, `auto` by default."""
    parser.add_argument(
        "--device",
        type=options.device,
        default="auto",
        help="auto, cpu, cuda, cuda:1, mps (default: auto = cuda if available, else cpu)",
    )


def add_dtype_option(
    parser: argparse.ArgumentParser,
    choices: tuple[str, ...] = DTYPES,
    help: str = "compute precision of the Transformer/ConvNeXt layers; front ends and ISTFT "
    "stay fp32 (default: %(default)s)",
) -> None:
    """--dtype: compute precision, fp32 by default."""
    parser.add_argument("--dtype", default="fp32", choices=list(choices), help=help)


def add_batch_option(
    parser: argparse.ArgumentParser, help: str = "files per forward pass (default: %(default)s)"
) -> None:
    """--batch-size: items per forward pass, 8 by default."""
    parser.add_argument(
        "--batch-size", type=options.positive_int, default=DEFAULT_BATCH_SIZE, help=help
    )


def add_format_option(
    parser: argparse.ArgumentParser,
    choices: tuple[str, ...] = ("wav", "flac"),
    help: str = "output format (default: %(default)s)",
) -> None:
    """--format: the type of the files a command writes, the first choice by default."""
    parser.add_argument("--format", default=choices[0], choices=list(choices), help=help)


def add_model_options(
    parser: argparse.ArgumentParser, batch: bool = True, kind: str = "tokenizer"
) -> None:
    """--model --device --dtype [--batch-size]: what every model-running command takes."""
    add_model_option(parser, kind)
    add_device_option(parser)
    add_dtype_option(parser)
    if batch:
        add_batch_option(parser)


def add_output_options(
    parser: argparse.ArgumentParser,
    help: str = "output folder (created if missing)",
    required: bool = True,
    default: object = None,
    overwrite: str | None = "replace outputs that already exist",
    type: Callable | None = None,
) -> None:
    """-o/--output and, unless `overwrite` is None, --overwrite with that help."""
    extra = {"type": type} if type is not None else {}
    if required:
        parser.add_argument("-o", "--output", required=True, help=help, **extra)
    else:
        parser.add_argument("-o", "--output", default=default, help=help, **extra)
    if overwrite is not None:
        parser.add_argument("--overwrite", action="store_true", help=overwrite)


class _DeprecatedNoResume(argparse.Action):
    """--no-resume: what `train enhancement` used to take; runs now resume only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            "note: --no-resume is deprecated and does nothing: a run resumes only with --resume "
            "(and refuses to start over an output folder that holds checkpoints)",
            file=sys.stderr,
        )


def add_resume_option(parser: argparse.ArgumentParser, checkpoint: bool = True, help=None) -> None:
    """--resume. Training (`checkpoint`): `--resume` (newest checkpoint of the run's output
    folder) or `--resume PATH` (that checkpoint), plus the deprecated no-op --no-resume.
    Otherwise a plain flag: continue an interrupted run, keeping what it finished."""
    if not checkpoint:
        parser.add_argument(
            "--resume",
            action="store_true",
            help=help or "continue an interrupted run: keep what it finished",
        )
        return
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="CHECKPOINT",
        help=help
        or "continue a run: from its newest checkpoint (no value) or the step_* folder given; "
        "without it a run starts fresh and refuses an output folder that holds checkpoints",
    )
    parser.add_argument("--no-resume", action=_DeprecatedNoResume)


def add_recipe_options(parser: argparse.ArgumentParser, example: str) -> None:
    """--config FILE and repeatable --set KEY=VALUE (into args.overrides) of a training recipe."""
    parser.add_argument("--config", required=True, help=f"YAML recipe, e.g. {example}")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (YAML), repeatable: --set train.max_steps=100 "
        "--set optim.lr=1e-4",
    )


def report_checks(checks) -> int:
    """What a training command's --check prints once the config loaded: the items each data
    source holds and one summary line per source. Returns the exit code, 0."""
    print(f"config OK; data sources hold {[c.items for c in checks]} items")
    print("\n".join(f"  {c.summary()}" for c in checks))
    return 0


def add_check_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="only validate the config and data sources, then exit"
    )


# ---- GAN training commands (train tokenizer, train codec) -------------------------------------
@dataclass(frozen=True)
class TrainingCommand:
    """One `sonotok train NAME` command on a crop recipe (tokenizer GAN, codec GAN, SemantiCodec
    decoder): the same options (--config/--set, --resume, --stop-after-steps,
    --no-tensorboard, --check) with the same meaning, the same --check of the data sources and
    the same final line. Recipes and trainers are named "module:attribute" and imported only
    when the command runs, so `sonotok --help` stays light."""

    name: str
    example_config: str  # the --config shown in --help
    config_class: str  # "module:Class" of the recipe's typed config
    trainer: str  # "module:function(config, resume=, stop_after_steps=, log_with=)"
    help: str
    description: str
    examples: str
    saved: str  # what the final line says was saved ("tokenizer", "codec")
    #: `describe(config) -> str`: builds what --check can build and says so in one line
    describe: Callable | None = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_recipe_options(parser, self.example_config)
        add_resume_option(parser)
        parser.add_argument(
            "--stop-after-steps",
            type=options.positive_int,
            default=None,
            metavar="N",
            help="checkpoint and stop after N steps of this invocation (for time-limited jobs; "
            "resume later)",
        )
        parser.add_argument(
            "--no-tensorboard", action="store_true", help="do not write TensorBoard logs"
        )
        add_check_option(parser)

    def register(self, subparsers) -> None:
        group = command_group(subparsers, "train", TRAIN_HELP)
        parser = group.add_parser(
            self.name,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            help=self.help,
            description=self.description,
            epilog=self.examples,
        )
        self.add_arguments(parser)
        parser.set_defaults(func=self.run)

    def main(self, argv: list[str] | None = None) -> int:
        """Entry point of `python -m sonotok.cli.train_NAME` (e.g. under accelerate launch)."""
        parser = options.OptionParser(
            prog=f"sonotok train {self.name}",
            epilog=self.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.add_arguments(parser)
        return self.run(parser.parse_args(argv))

    def run(self, args) -> int:
        """Load the recipe (--config, --set), then --check or train. A SonotokError (config,
        data, checkpoint, model) is one line, exit 2."""
        from sonotok.tokenizer.train.config import load_config

        try:
            config = load_config(_attribute(self.config_class), args.config, args.overrides)
            if args.check:
                return self.check(config)
            result = _attribute(self.trainer)(
                config,
                resume=args.resume,
                stop_after_steps=args.stop_after_steps,
                log_with=None if args.no_tensorboard else "tensorboard",
            )
        except SonotokError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if result.model_dir is not None:  # a stop was already reported by the trainer
            print(f"trained {result.step} steps; {self.saved} saved to {result.model_dir}")
        return 0

    def check(self, config) -> int:
        """--check: the config loaded, the model builds (where `describe` says so) and the
        data sources are usable."""
        from sonotok.tokenizer.train.data import check_data

        line = self.describe(config) if self.describe else None
        data = config.data
        code = report_checks(
            check_data(data.sources + data.val_sources, data.segment_samples, data.silence_db)
        )
        if line:
            print(f"  model: {line}")
        return code


def _attribute(spec: str):
    """ "module:attribute" → the attribute (imported now)."""
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


# ---- models ------------------------------------------------------------------------------
def choose_model(args, kind: str = "tokenizer") -> None:
    """Without --model, set args.model to the default for `kind` (the official model when
    cached locally, else the bundled sonotok-mini one) and say which on stderr."""
    from sonotok.defaults import model_or_default

    args.model = model_or_default(args.model, kind)


def open_tokenizer(name: str, device="auto", dtype: str | None = "fp32"):
    """Any registered tokenizer family (by its config.json model_type), in `dtype`, on
    `device` (a --device name, or a torch.device as accelerate gives it), in eval mode.
    Raises SonotokError subclasses for what the user can fix."""
    from sonotok.core.options import resolve_device
    from sonotok.tokenizer.interface import load_tokenizer as load

    model = load(name)
    model.set_compute_dtype(dtype)
    return model.to(resolve_device(device) if isinstance(device, str) else device).eval()


def load_tokenizer(args):
    """The tokenizer the command line asks for (--model, --device, --dtype), or None after
    printing why not."""
    choose_model(args)
    try:
        model = open_tokenizer(args.model, args.device, args.dtype)
    except SonotokError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    millions = model.describe()["parameters"] / 1e6
    print(f"model: {args.model} ({millions:.1f}M parameters)", file=sys.stderr)
    return model


# The --features name of a discrete model's integer codes (every other name is continuous).
CODES = "codes"
CODES_HELP = (
    "; a discrete model (EnCodec, DAC, SQCodec, UniCodec, ...) gives its integer codes by "
    "default (--features codes) and the codes' continuous embeddings with --features latents"
)


def feature_choices(model, codes: bool) -> tuple[str, ...]:
    """What --features may name for `model`: `codes` first (the default) for a discrete model
    where the command writes codes, then the model's continuous latents (its first is the
    default and decodable one)."""
    names = tuple(model.feature_names)
    return (CODES, *names) if codes and model.is_discrete else names


def check_feature(name: str, model, codes: bool, model_name) -> str | None:
    """Why --features `name` does not fit `model` (None when it does)."""
    if name in feature_choices(model, codes):
        return None
    offered = ", ".join(feature_choices(model, codes))
    if name == CODES and model.is_discrete:
        return f"--features codes: this command writes continuous latents; pick {offered}"
    if name == CODES:
        return (
            f"--features codes: {model_name} is a continuous tokenizer (no codes); pick {offered}"
        )
    return f"--features {name}: {model_name} offers {offered}; pick one of them"


def choose_features(args, model, codes: bool = False) -> str | None:
    """--features checked against what `model` offers (see `feature_choices`), or None after
    printing what it offers."""
    features = getattr(args, "features", None) or feature_choices(model, codes)[0]
    problem = check_feature(features, model, codes, args.model)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return None
    return features


def add_features_option(parser: argparse.ArgumentParser, help: str, codes: str = "") -> None:
    """--features: which of the model's latents; the model checks the name when it loads.
    `codes` is what the help adds where the command also writes discrete codes."""
    parser.add_argument(
        "--features",
        default=None,
        metavar="NAME",
        help=f"{help}: the model's decodable latents by default (DashengTokenizer: fused; "
        f"or one branch, semantic or acoustic){codes}",
    )


# ---- files in, one output each -------------------------------------------------------------
@dataclass
class Job:
    source: Path
    target: Path


def plan_jobs(args, extensions: tuple[str, ...], suffix: str) -> tuple[list[Job], list[str], int]:
    """Inputs → jobs with output paths; drops existing outputs unless --overwrite.

    Also removes temporary files a killed earlier run left in the output folders."""
    from sonotok.core.io import remove_stale_temporaries
    from sonotok.core.sources import expand_inputs

    pairs, problems = expand_inputs(args.inputs, extensions)
    out = Path(args.output)
    remove_stale_temporaries({out} | {out / stem.parent for _, stem in pairs})
    jobs, seen, skipped = [], {}, 0
    for source, stem in pairs:
        target = out / stem.with_suffix(suffix)
        if target in seen:
            problems.append(
                f"{source}: same output name as {seen[target]} ({target}); rename one or pass "
                "their folder"
            )
            continue
        seen[target] = source
        if target.exists() and not args.overwrite:
            skipped += 1
            continue
        jobs.append(Job(source, target))
    return jobs, problems, skipped


def encode_files(args, suffix: str, what: str, save: Callable, codes: bool = False) -> int:
    """Audio files (args.inputs) → one output each through the tokenizer's encode, for
    encode, embed and reconstruct alike: plans the jobs, loads the model, checks --features
    (the model's first where a command has no such option; `codes`: the command also writes
    a discrete model's codes, its default), reads and encodes the clips --batch-size at a
    time; `save(job, clip, latents, model, features)` writes one output — with features
    `codes`, `latents` is the pair (codes (T, K), the clip's decode options).
    Returns the exit code."""
    from sonotok.core.audio import read_clip
    from sonotok.core.sources import AUDIO_EXTENSIONS

    jobs, problems, skipped = plan_jobs(args, AUDIO_EXTENSIONS, suffix)
    model = load_tokenizer(args)
    if model is None:
        return 2
    features = choose_features(args, model, codes)
    if features is None:
        return 2

    def run_model(waves: list, progress) -> list:
        if features != CODES:
            return model.encode(waves, features=features, progress=progress)
        codes, options = model.encode_codes(waves, return_options=True)
        if progress is not None:
            progress(1.0)
        return list(zip(codes, options))

    def process(group: list[Job]) -> None:
        clips = [read_clip(job.source, model.sample_rate) for job in group]
        seconds = sum(len(c.wave) for c in clips) / model.sample_rate
        with audio_progress(seconds, group[0].source.name, f"{what} ") as progress:
            latents = run_model([c.wave for c in clips], progress)
        for job, clip, z in zip(group, clips, latents):
            save(job, clip, z, model, features)

    return run_jobs(jobs, problems, skipped, process, args.batch_size, what)


LONG_AUDIO_SECONDS = 60.0  # a model call on at least this much audio shows its own progress bar


@contextlib.contextmanager
def audio_progress(seconds: float, name: str, prefix: str = ""):
    """A `progress(fraction)` callback drawing a bar in seconds of audio (like DAC's CLI) when
    one model call covers at least LONG_AUDIO_SECONDS; None (no bar) for short work. The bar
    is cleared when done and, like every bar here, hidden when stderr is not a terminal."""
    if seconds < LONG_AUDIO_SECONDS:
        yield None
        return
    from tqdm import tqdm

    total = round(seconds, 1)
    with tqdm(total=total, unit="s", desc=f"{prefix}{name}", leave=False, disable=None) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(min(1.0, fraction) * total, 1) - bar.n)

        yield progress


# What a bad input (or a full disk) raises: one line for that file and the batch goes on.
# Anything else is a bug in sonotok and keeps its traceback.
INPUT_ERRORS = (SonotokError, OSError, ValueError, RuntimeError, MemoryError)


def _stamp(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now (inode, mtime), to tell the outputs a failed batch wrote."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def _failure(job: Job, err: BaseException) -> str:
    """One line for a failed file, naming it once."""
    text = str(err) or type(err).__name__
    if isinstance(err, MemoryError):
        text = f"out of memory ({text}); use a smaller --batch-size or split the file"
    return text if str(job.source) in text else f"{job.source}: {text}"


def _stop_on_full_disk(err: OSError, job: Job, written: int, left: int, failures: list[str]) -> int:
    """The one line a full disk gets: what was written, what was not; exit status 1."""
    from tqdm import tqdm

    from sonotok.core.io import disk_full_error

    what = disk_full_error(err, job.target)
    failed = f", {len(failures)} failed" if failures else ""
    tqdm.write(
        f"error: {what}; {written} file(s) written{failed}, {left} not written. Free some space "
        "and run the same command again: finished outputs are skipped",
        file=sys.stderr,
    )
    return 1


def run_jobs(
    jobs: list[Job],
    problems: list[str],
    skipped: int,
    process: Callable[[list[Job]], None],
    batch: int,
    what: str,
) -> int:
    """Run `process` on batches of jobs; a failing batch is retried file by file (keeping
    what it wrote) so one bad input costs only itself: one line per failure. A full disk
    stops the run with one line saying what was written. Returns the exit code."""
    from tqdm import tqdm

    from sonotok.core.io import is_disk_full

    failures = list(problems)
    for p in problems:
        tqdm.write(f"error: {p}", file=sys.stderr)
    done = 0
    with tqdm(total=len(jobs), unit="file", desc=what, disable=None) as bar:
        for i in range(0, len(jobs), batch):
            group = jobs[i : i + batch]
            before = [_stamp(job.target) for job in group]
            try:
                process(group)
                done += len(group)
            except INPUT_ERRORS as err:
                retry = [j for j, s in zip(group, before) if _stamp(j.target) == s]
                done += len(group) - len(retry)  # written before the batch failed
                after = len(jobs) - i - len(group)
                if is_disk_full(err):
                    return _stop_on_full_disk(err, group[0], done, len(retry) + after, failures)
                for n, job in enumerate(retry):
                    try:
                        process([job])
                        done += 1
                    except INPUT_ERRORS as err:
                        if is_disk_full(err):
                            left = len(retry) - n + after
                            return _stop_on_full_disk(err, job, done, left, failures)
                        failures.append(_failure(job, err))
                        tqdm.write(f"error: {failures[-1]}", file=sys.stderr)
            bar.update(len(group))
    summary = f"{what}: {done} written"
    if skipped:
        summary += f", {skipped} skipped (output exists; pass --overwrite to replace)"
    if failures:
        summary += f", {len(failures)} failed"
    print(summary, file=sys.stderr)
    return 1 if failures else 0
