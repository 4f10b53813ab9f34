"""`sonotok encode | decode | reconstruct`: files, folders and globs in, one output per input.

They work on any tokenizer family through the `Tokenizer` interface (sample_rate,
frame_rate, feature_names, encode, decode); the shared plumbing is in `common`.
"""

from __future__ import annotations

import sys

from sonotok.cli.common import (
    Job,
    add_features_option,
    add_format_option,
    add_model_options,
    add_output_options,
    audio_progress,
    encode_files,
    load_tokenizer,
    plan_jobs,
    run_jobs,
)
from sonotok.core import options


def _encode(args) -> int:
    from sonotok.core.latents import LatentFile

    def save(job: Job, clip, z, model, features: str) -> None:
        LatentFile(
            z,
            model=str(args.model),
            features=features,
            frame_rate=model.frame_rate,
            latent_sample_rate=model.sample_rate,
            sample_rate=clip.original_sample_rate,
            num_samples=clip.original_num_samples,
            channels=clip.channels,
            source=str(job.source),
        ).save(job.target)  # refuses NaN/inf latents

    return encode_files(args, ".safetensors", "encode", save)


def _decode(args) -> int:
    from tqdm import tqdm

    from sonotok.core.audio import restore_rate_and_length, write_audio
    from sonotok.core.io import check_finite
    from sonotok.core.latents import LATENT_EXTENSIONS, LatentFile

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
            seconds = latent.latents.shape[0] / model.frame_rate
            with audio_progress(seconds, job.source.name, "decode ") as progress:
                wave = model.decode(latent.latents, progress=progress)
            check_finite(wave, "decoded audio", job.source)
            if args.sample_rate:
                rate, length = args.sample_rate, None
            else:
                rate, length = latent.sample_rate or model.sample_rate, latent.num_samples
            wave = restore_rate_and_length(wave, model.sample_rate, rate, length)
            write_audio(job.target, wave, rate)

    return run_jobs(jobs, problems, skipped, process, 1, "decode")


def _reconstruct(args) -> int:
    from sonotok.core.audio import restore_rate_and_length, write_audio
    from sonotok.core.io import check_finite

    def save(job: Job, clip, z, model, features: str) -> None:
        check_finite(z, "latents", job.source)
        wave = model.decode(z)
        check_finite(wave, "decoded audio", job.source)
        rate = args.sample_rate or clip.original_sample_rate
        length = None if args.sample_rate else clip.original_num_samples
        write_audio(
            job.target, restore_rate_and_length(wave, model.sample_rate, rate, length), rate
        )

    return encode_files(args, f".{args.format}", "reconstruct", save)


def _add_audio_output_options(parser, rate_help: str) -> None:
    """--sample-rate (else the original's) and --format of the audio decode/reconstruct write."""
    parser.add_argument("--sample-rate", type=options.sample_rate, default=None, help=rate_help)
    add_format_option(parser)


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
    add_features_option(p, "which latents")
    add_model_options(p)
    add_output_options(p)
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
    _add_audio_output_options(p, "write at this rate instead of the original one")
    add_model_options(p, batch=False)
    add_output_options(p)
    p.set_defaults(func=_decode)

    p = subparsers.add_parser(
        "reconstruct",
        help="audio → latents → audio (listen to what the tokenizer keeps)",
        description="Encode and decode audio files in one go; outputs have the input's sample rate and "
        "length (mono). Example: sonotok reconstruct speech.wav -o recon/",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    _add_audio_output_options(p, "write at this rate instead of the input's")
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=_reconstruct)
