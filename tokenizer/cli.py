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

import torch
from tqdm import tqdm

from .audio import AudioInputError, atomic_path, read_clip, restore_rate_and_length, write_audio
from .checkpoints import CheckpointError, ModelNotFoundError
from .config import ConfigError

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
    """Inputs → jobs with output paths; drops existing outputs unless --overwrite."""
    pairs, problems = expand_inputs(args.inputs, extensions)
    out = Path(args.output)
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


def add_model_options(parser: argparse.ArgumentParser, batch: bool = True) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=f"hub id or local folder (default: {DEFAULT_MODEL} if it is in the local Hugging Face "
        "cache, else the bundled offline sonotok-mini tokenizer)",
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)"
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
            type=int,
            default=8,
            help="files per forward pass (default: %(default)s)",
        )
    parser.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs that already exist"
    )


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def choose_model(args, kind: str = "tokenizer") -> None:
    """Without --model, set args.model to the default for `kind` (the official model when
    cached locally, else the bundled sonotok-mini one) and say which on stderr."""
    from sonotok.defaults import model_or_default

    args.model = model_or_default(args.model, kind)


def load_tokenizer(args):
    """The tokenizer the command line asks for, or None after printing why not."""
    from .model import AudioTokenizer

    choose_model(args)
    try:
        model = AudioTokenizer.from_pretrained(
            args.model, device=pick_device(args.device), compute_dtype=args.dtype
        )
    except (ModelNotFoundError, CheckpointError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    print(
        f"model: {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)",
        file=sys.stderr,
    )
    return model


def run_jobs(
    jobs: list[Job],
    problems: list[str],
    skipped: int,
    process: Callable[[list[Job]], None],
    batch: int,
    what: str,
) -> int:
    """Run `process` on batches of jobs; a failing batch is retried file by file so one
    bad input costs only itself. Prints one line per failure; returns the exit code."""
    failures = list(problems)
    for p in problems:
        tqdm.write(f"error: {p}", file=sys.stderr)
    done = 0
    with tqdm(total=len(jobs), unit="file", desc=what, disable=None) as bar:
        for i in range(0, len(jobs), batch):
            group = jobs[i : i + batch]
            try:
                process(group)
                done += len(group)
            except (AudioInputError, ValueError, OSError):
                for job in group:
                    try:
                        process([job])
                        done += 1
                    except (AudioInputError, ValueError, OSError) as err:
                        message = (
                            str(err) if str(job.source) in str(err) else f"{job.source}: {err}"
                        )
                        failures.append(message)
                        tqdm.write(f"error: {message}", file=sys.stderr)
            bar.update(len(group))
    summary = f"{what}: {done} written"
    if skipped:
        summary += f", {skipped} skipped (output exists; pass --overwrite to replace)"
    if failures:
        summary += f", {len(failures)} failed"
    print(summary, file=sys.stderr)
    return 1 if failures else 0


# ---- latent files -------------------------------------------------------------------------
def save_latents(path: Path, latents: torch.Tensor, metadata: dict[str, str]) -> None:
    """One (T, D) float32 tensor "latents" + string metadata, written atomically."""
    from safetensors.torch import save_file

    tmp = atomic_path(path)
    try:
        save_file(
            {"latents": latents.detach().float().contiguous().cpu()}, str(tmp), metadata=metadata
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_latents(path: Path) -> tuple[torch.Tensor, dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if "latents" not in f.keys():
                raise ValueError(
                    f"{path}: no 'latents' tensor; this file was not written by `sonotok encode`"
                )
            return f.get_tensor("latents"), f.metadata() or {}
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None


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
            job.target.parent.mkdir(parents=True, exist_ok=True)
            save_latents(
                job.target,
                z,
                {
                    "model": str(args.model),
                    "features": args.features,
                    "frame_rate": str(model.frame_rate),
                    "latent_sample_rate": str(model.sample_rate),
                    "sample_rate": str(clip.original_sample_rate),
                    "num_samples": str(clip.original_num_samples),
                    "channels": str(clip.channels),
                    "source": str(job.source),
                },
            )

    return run_jobs(jobs, problems, skipped, process, args.batch_size, "encode")


def _decode(args) -> int:
    jobs, problems, skipped = plan_jobs(args, LATENT_EXTENSIONS, f".{args.format}")
    model = load_tokenizer(args)
    if model is None:
        return 2

    def process(group: list[Job]) -> None:
        for job in group:
            latents, meta = load_latents(job.source)
            if meta.get("features", "fused") != "fused":
                raise ValueError(
                    f"{job.source}: holds {meta['features']} features; only fused latents can be decoded"
                )
            wave = model.decode(latents)
            if args.sample_rate:
                rate, length = args.sample_rate, None
            else:
                rate = int(meta.get("sample_rate", model.sample_rate))
                length = int(meta["num_samples"]) if "num_samples" in meta else None
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
            wave = model.decode(z)
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
        type=int,
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
        "--sample-rate", type=int, default=None, help="write at this rate instead of the input's"
    )
    p.add_argument(
        "--format",
        default="wav",
        choices=["wav", "flac"],
        help="output format (default: %(default)s)",
    )
    add_model_options(p)
    p.set_defaults(func=_reconstruct)

    from .train_cli import register as register_train

    register_train(subparsers)
