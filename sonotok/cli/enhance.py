"""`sonotok enhance` (denoise recordings) and `sonotok train enhancement` (train a denoiser)."""

from __future__ import annotations

import argparse
import sys

from sonotok.cli.common import (
    TRAIN_HELP,
    add_check_option,
    add_format_option,
    add_model_options,
    add_output_options,
    add_recipe_options,
    add_resume_option,
    choose_model,
    command_group,
    plan_jobs,
    report_checks,
    run_jobs,
)
from sonotok.core import options
from sonotok.core.errors import SonotokError


def _enhance(args) -> int:
    from sonotok.core.options import resolve_device
    from sonotok.core.sources import AUDIO_EXTENSIONS
    from sonotok.enhancement.pipeline import EnhancementPipeline

    if not 0.0 <= args.strength <= 1.0:
        print(f"error: --strength {args.strength}: choose a value in [0, 1]", file=sys.stderr)
        return 2
    jobs, problems, skipped = plan_jobs(args, AUDIO_EXTENSIONS, f".{args.format}")
    choose_model(args, "denoiser")
    try:
        pipe = EnhancementPipeline.from_pretrained(
            args.model,
            tokenizer=args.tokenizer,
            device=resolve_device(args.device),
            compute_dtype=args.dtype,
            chunk_seconds=args.chunk_seconds or None,
            crossfade_seconds=args.crossfade_seconds,
        )
    except SonotokError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"model: {args.model} ({sum(p.numel() for p in pipe.model.parameters()) / 1e6:.1f}M parameters)",
        file=sys.stderr,
    )

    def process(group) -> None:
        for job in group:
            pipe.enhance_file(job.source, job.target, args.strength)

    return run_jobs(jobs, problems, skipped, process, 1, "enhance")


def _train(args) -> int:
    from sonotok.enhancement.config import load_config
    from sonotok.enhancement.train import train

    try:
        config = load_config(args.config, args.overrides)
        if getattr(args, "check", False):
            from sonotok.enhancement.data import check_data

            config.data.kind()
            checks = check_data(config.data)
            return report_checks(checks)
        folder = train(config, resume=args.resume)
    except SonotokError as err:  # config, data, checkpoint, model: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"model written to {folder}; run: sonotok enhance NOISY/ -o CLEAN/ --model {folder}",
        file=sys.stderr,
    )
    return 0


MIN_CHUNK_SECONDS = 0.1  # the pipeline needs >= 2 latent frames (80 ms at 25 Hz) per chunk


def chunk_seconds(text: str) -> float:
    """--chunk-seconds: 0 (the whole file at once) or a chunk of at least MIN_CHUNK_SECONDS."""
    value = options.finite_float(text)
    if value < 0 or 0 < value < MIN_CHUNK_SECONDS:
        raise options.OptionError(
            f"{text!r} is too short; choose 0 (whole file) or at least {MIN_CHUNK_SECONDS:g} s"
        )
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "enhance",
        help="denoise speech recordings (any rate, channels and length)",
        description="Remove noise from speech recordings. Each input (wav/flac/ogg/mp3, any sample rate, "
        "mono or multi-channel, any length) is written to OUTPUT/<same relative name>.<format> with the "
        "same rate, channel count and length; every channel is enhanced on its own. Long files are "
        "processed in overlapping chunks joined by a crossfade, so memory stays bounded. "
        "--model is the official mispeech/dasheng-denoiser when it is in the local Hugging Face cache, "
        "else the bundled offline sonotok-mini denoiser; or pass a folder written by "
        "`sonotok train enhancement`. Examples:\n"
        "  sonotok enhance noisy/ -o clean/\n"
        "  sonotok enhance 'calls/**/*.flac' -o clean/ --strength 0.8 --model runs/enhancement/model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="IN",
        help="audio files, folders (searched recursively) or glob patterns",
    )
    p.add_argument(
        "--strength",
        type=options.probability,
        default=1.0,
        help="dry/wet mix: 1 = fully enhanced (default), 0 = the input unchanged, 0.8 keeps a little of the original",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer for a sonotok denoiser folder, overriding the one it names (hub id or folder)",
    )
    p.add_argument(
        "--chunk-seconds",
        type=chunk_seconds,
        default=10.0,
        help="process long files in chunks of this length (default: %(default)s; 0 = whole file at once)",
    )
    p.add_argument(
        "--crossfade-seconds",
        type=options.non_negative_float,
        default=1.0,
        help="overlap blended between neighbouring chunks (default: %(default)s)",
    )
    add_format_option(p)
    add_model_options(p, batch=False, kind="denoiser")
    add_output_options(p)
    p.set_defaults(func=_enhance)

    group = command_group(subparsers, "train", TRAIN_HELP)
    t = group.add_parser(
        "enhancement",
        help="train a latent denoiser (noisy → clean speech latents)",
        description="Train the latent-space speech denoiser on accelerate (1 CPU, 1 GPU, or N GPUs via "
        "`accelerate launch -m sonotok.cli train enhancement ...`). Clean speech and noise are mixed on the "
        "fly (or paired folders / cached latents are read), encoded by the frozen tokenizer, and a small "
        "Transformer learns to map noisy latents to clean ones. --resume continues a run from its "
        "newest checkpoint in output_dir. Example:\n"
        "  sonotok train enhancement --config configs/enhancement/paper.yaml \\\n"
        "      --set data.clean=speech/ --set data.noise=noise/ --set train.output_dir=runs/se",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_options(t, "configs/enhancement/paper.yaml")
    add_resume_option(t)
    add_check_option(t)
    t.set_defaults(func=_train)
