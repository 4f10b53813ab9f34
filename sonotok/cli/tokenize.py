"""`sonotok encode | decode | reconstruct`: files, folders and globs in, one output per input.

Shared CLI plumbing lives here too (input expansion, model options, per-file error
reporting) because the tokenizer is the lowest package every other command uses.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from sonotok.core import options
from sonotok.core.audio import read_clip, restore_rate_and_length, write_audio
from sonotok.core.errors import SonotokError
from sonotok.core.io import (
    check_finite,
    disk_full_error,
    is_disk_full,
    remove_stale_temporaries,
)
from sonotok.core.latents import LatentFile
from sonotok.core.options import resolve_device
from sonotok.tokenizer.checkpoints import CheckpointError, ModelNotFoundError
from sonotok.tokenizer.config import ConfigError

DEFAULT_MODEL = "mispeech/dashengtokenizer"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
LATENT_EXTENSIONS = (".safetensors",)


# ---- shared plumbing ----------------------------------------------------------------------
def command_group(subparsers, name: str, help: str):
    """The sub-subparsers of a command shared by several packages (e.g. `train`),
    created by whichever package registers first."""
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help, description=help)
        parser.set_defaults(func=lambda args, p=parser: p.print_help() or 2)
        parser._group = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT")
    return parser._group


@dataclass
class Job:
    source: Path
    target: Path


def expand_inputs(
    items: Iterable[str], extensions: tuple[str, ...]
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files, folders (searched recursively) and globs → (file, relative output stem) pairs.

    Files from a folder keep their path below it, so outputs mirror the tree; files
    named directly keep their name. Returns the pairs and one message per argument
    that matched nothing.
    """
    pairs, problems = [], []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions
            )
            pairs += [(p, p.relative_to(path).with_suffix("")) for p in found]
            if not found:
                problems.append(f"{item}: folder has no {'/'.join(extensions)} files")
        elif path.is_file():
            pairs.append((path, Path(path.stem)))
        elif glob.has_magic(item):
            found = sorted(
                Path(p)
                for p in glob.glob(os.path.expanduser(item), recursive=True)
                if Path(p).is_file()
            )
            pairs += [(p, Path(p.stem)) for p in found]
            if not found:
                problems.append(f"{item}: pattern matched no files")
        else:
            problems.append(f"{item}: no such file or folder")
    return pairs, problems


def plan_jobs(args, extensions: tuple[str, ...], suffix: str) -> tuple[list[Job], list[str], int]:
    """Inputs → jobs with output paths; drops existing outputs unless --overwrite.

    Also removes temporary files a killed earlier run left in the output folders."""
    pairs, problems = expand_inputs(args.inputs, extensions)
    out = Path(args.output)
    remove_stale_temporaries({out} | {out / stem.parent for _, stem in pairs})
    jobs, seen, skipped = [], {}, 0
    for source, stem in pairs:
        target = out / stem.with_suffix(suffix)
        if target in seen:
            problems.append(
                f"{source}: same output name as {seen[target]} ({target}); rename one or pass their folder"
            )
            continue
        seen[target] = source
        if target.exists() and not args.overwrite:
            skipped += 1
            continue
        jobs.append(Job(source, target))
    return jobs, problems, skipped


def add_model_options(
    parser: argparse.ArgumentParser, batch: bool = True, kind: str = "tokenizer"
) -> None:
    """The options every model-running command shares; `kind` (tokenizer, denoiser,
    generation) names the model --model defaults to."""
    from sonotok.defaults import OFFICIAL

    parser.add_argument(
        "--model",
        default=None,
        help=f"{kind} hub id or local folder (default: {OFFICIAL[kind]} if it is in the local "
        f"Hugging Face cache, else the bundled offline sonotok-mini {kind})",
    )
    parser.add_argument(
        "--device",
        type=options.device,
        default="auto",
        help="auto, cpu, cuda, cuda:1, mps (default: auto = cuda if available, else cpu)",
    )
    parser.add_argument(
        "--dtype",
        default="fp32",
        choices=["fp32", "bf16", "fp16"],
        help="compute precision of the Transformer/ConvNeXt layers; front ends and ISTFT stay fp32",
    )
    if batch:
        parser.add_argument(
            "--batch-size",
            type=options.positive_int,
            default=8,
            help="files per forward pass (default: %(default)s)",
        )
    parser.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist"
    )


def choose_model(args, kind: str = "tokenizer") -> None:
    """Without --model, set args.model to the default for `kind` (the official model when
    cached locally, else the bundled sonotok-mini one) and say which on stderr."""
    from sonotok.defaults import model_or_default

    args.model = model_or_default(args.model, kind)


def load_tokenizer(args):
    """The tokenizer the command line asks for, or None after printing why not."""
    from sonotok.tokenizer.model import AudioTokenizer

    choose_model(args)
    try:
        model = AudioTokenizer.from_pretrained(
            args.model, device=resolve_device(args.device), compute_dtype=args.dtype
        )
    except (ModelNotFoundError, CheckpointError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    print(
        f"model: {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)",
        file=sys.stderr,
    )
    return model


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


# ---- commands -----------------------------------------------------------------------------
def _encode(args) -> int:
    jobs, problems, skipped = plan_jobs(args, AUDIO_EXTENSIONS, ".safetensors")
    model = load_tokenizer(args)
    if model is None:
        return 2

    def process(group: list[Job]) -> None:
        clips = [read_clip(job.source, model.sample_rate) for job in group]
        latents = model.encode([c.wave for c in clips], features=args.features)
        for job, clip, z in zip(group, clips, latents):
            LatentFile(
                z,
                model=str(args.model),
                features=args.features,
                frame_rate=model.frame_rate,
                latent_sample_rate=model.sample_rate,
                sample_rate=clip.original_sample_rate,
                num_samples=clip.original_num_samples,
                channels=clip.channels,
                source=str(job.source),
            ).save(job.target)  # refuses NaN/inf latents

    return run_jobs(jobs, problems, skipped, process, args.batch_size, "encode")


def _decode(args) -> int:
    jobs, problems, skipped = plan_jobs(args, LATENT_EXTENSIONS, f".{args.format}")
    model = load_tokenizer(args)
    if model is None:
        return 2

    warned: set[str | None] = set()

    def process(group: list[Job]) -> None:
        for job in group:
            latent = LatentFile.load(job.source)
            warning = latent.validate(model, args.model)  # refuses what cannot decode right
            if warning and latent.model not in warned:  # once per model that made latents
                warned.add(latent.model)
                tqdm.write(f"warning: {warning}", file=sys.stderr)
            wave = model.decode(latent.latents)
            check_finite(wave, "decoded audio", job.source)
            if args.sample_rate:
                rate, length = args.sample_rate, None
            else:
                rate, length = latent.sample_rate or model.sample_rate, latent.num_samples
            wave = restore_rate_and_length(wave, model.sample_rate, rate, length)
            write_audio(job.target, wave, rate)

    return run_jobs(jobs, problems, skipped, process, 1, "decode")


def _reconstruct(args) -> int:
    jobs, problems, skipped = plan_jobs(args, AUDIO_EXTENSIONS, f".{args.format}")
    model = load_tokenizer(args)
    if model is None:
        return 2

    def process(group: list[Job]) -> None:
        clips = [read_clip(job.source, model.sample_rate) for job in group]
        latents = model.encode([c.wave for c in clips])
        for job, clip, z in zip(group, clips, latents):
            check_finite(z, "latents", job.source)
            wave = model.decode(z)
            check_finite(wave, "decoded audio", job.source)
            rate = args.sample_rate or clip.original_sample_rate
            length = None if args.sample_rate else clip.original_num_samples
            write_audio(
                job.target, restore_rate_and_length(wave, model.sample_rate, rate, length), rate
            )

    return run_jobs(jobs, problems, skipped, process, args.batch_size, "reconstruct")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "encode",
        help="audio files → latent files (.safetensors, 25 Hz)",
        description="Encode audio files (wav/flac/ogg/mp3, any rate and channel count) into 25 Hz latents. "
        "Writes one OUTPUT/<name>.safetensors per input holding a (T, D) float32 tensor 'latents' and "
        "metadata (model, sample rate, frame rate, sample count). Folders are searched recursively and "
        "their tree is mirrored. Example: sonotok encode clips/ -o latents/",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    p.add_argument(
        "--features",
        default="fused",
        choices=["fused", "semantic", "acoustic"],
        help="which latents: fused z (decodable, default), or one branch",
    )
    add_model_options(p)
    p.set_defaults(func=_encode)

    p = subparsers.add_parser(
        "decode",
        help="latent files → audio",
        description="Decode latent files written by `sonotok encode` back to audio, at the original file's "
        "sample rate and length unless --sample-rate is given. Example: sonotok decode latents/ -o audio/",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="LATENTS", help=".safetensors files, folders or glob patterns"
    )
    p.add_argument(
        "--sample-rate",
        type=options.sample_rate,
        default=None,
        help="write at this rate instead of the original one",
    )
    p.add_argument(
        "--format",
        default="wav",
        choices=["wav", "flac"],
        help="output format (default: %(default)s)",
    )
    add_model_options(p, batch=False)
    p.set_defaults(func=_decode)

    p = subparsers.add_parser(
        "reconstruct",
        help="audio → latents → audio (listen to what the tokenizer keeps)",
        description="Encode and decode audio files in one go; outputs have the input's sample rate and "
        "length (mono). Example: sonotok reconstruct speech.wav -o recon/",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    p.add_argument(
        "--sample-rate",
        type=options.sample_rate,
        default=None,
        help="write at this rate instead of the input's",
    )
    p.add_argument(
        "--format",
        default="wav",
        choices=["wav", "flac"],
        help="output format (default: %(default)s)",
    )
    add_model_options(p)
    p.set_defaults(func=_reconstruct)

    from sonotok.cli.train_tokenizer import register as register_train

    register_train(subparsers)
