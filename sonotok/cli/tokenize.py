"""`sonotok encode | decode | reconstruct`: files, folders and globs in, one output per input.

They work on any tokenizer family through the `Tokenizer` interface (sample_rate,
frame_rate, feature_names, encode, decode); the shared plumbing is in `common`.
"""

from __future__ import annotations

import sys

from sonotok.cli.common import (
    CODES,
    CODES_HELP,
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


def _save_codes(args, job: Job, clip, coded: tuple, model) -> None:
    """One clip's (codes, decode options) → a code file with the model's codebook facts."""
    from sonotok.core.codes import CodeFile

    codes, decode_options = coded
    CodeFile(
        codes,
        codebook_size=model.codebook_size,
        codebook_sizes=model.codebook_sizes,
        model=str(args.model),
        model_type=getattr(model, "model_type", None),
        num_codebooks=model.num_codebooks,
        frame_rate=model.frame_rate,
        bitrate=model.bitrate,
        latent_sample_rate=model.sample_rate,
        sample_rate=clip.original_sample_rate,
        num_samples=clip.original_num_samples,
        channels=clip.channels,
        source=str(job.source),
        decode_options=decode_options,
    ).save(job.target)  # refuses codes outside the codebook


def _encode(args) -> int:
    from sonotok.core.latents import LatentFile

    def save(job: Job, clip, z, model, features: str) -> None:
        if features == CODES:
            _save_codes(args, job, clip, z, model)
            return
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

    return encode_files(args, ".safetensors", "encode", save, codes=True)


def _decode(args) -> int:
    from tqdm import tqdm

    from sonotok.core.audio import restore_rate_and_length, write_audio
    from sonotok.core.codes import CodeFile, load_encoded
    from sonotok.core.io import check_finite
    from sonotok.core.latents import LATENT_EXTENSIONS

    jobs, problems, skipped = plan_jobs(args, LATENT_EXTENSIONS, f".{args.format}")
    model = load_tokenizer(args)
    if model is None:
        return 2

    warned: set[str | None] = set()

    def process(group: list[Job]) -> None:
        for job in group:
            latent = load_encoded(job.source)  # a latent or a code file, by its content
            warning = latent.validate(model, args.model)  # refuses what cannot decode right
            if warning and latent.model not in warned:  # once per model that made latents
                warned.add(latent.model)
                tqdm.write(f"warning: {warning}", file=sys.stderr)
            if isinstance(latent, CodeFile):  # the clip's recorded choices make decoding exact
                values, decode_options = latent.codes, latent.decode_options
            else:
                values, decode_options = latent.latents, {}
            seconds = values.shape[0] / model.frame_rate
            with audio_progress(seconds, job.source.name, "decode ") as progress:
                wave = model.decode(values, progress=progress, **decode_options)
            check_finite(wave, "decoded audio", job.source)
            if args.sample_rate:
                rate, length = args.sample_rate, None
            else:
                rate, length = latent.sample_rate or model.sample_rate, latent.num_samples
            wave = restore_rate_and_length(wave, model.output_sample_rate, rate, length)
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
            job.target, restore_rate_and_length(wave, model.output_sample_rate, rate, length), rate
        )

    return encode_files(args, f".{args.format}", "reconstruct", save)


def _add_audio_output_options(parser, rate_help: str) -> None:
    """--sample-rate (else the original's) and --format of the audio decode/reconstruct write."""
    parser.add_argument("--sample-rate", type=options.sample_rate, default=None, help=rate_help)
    add_format_option(parser)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "encode",
        help="audio files → latent files, or code files for discrete models (.safetensors)",
        description="Encode audio files (wav/flac/ogg/mp3, any rate and channel count) into latents at "
        "the model's frame rate (25 Hz for DashengTokenizer). Writes one OUTPUT/<name>.safetensors per "
        "input holding a (T, D) float32 tensor 'latents' and metadata (model, sample rate, frame rate, "
        "sample count). A discrete model (EnCodec, DAC, SQCodec, UniCodec, ...) writes code files "
        "instead: a (T, K) integer tensor 'codes' and metadata adding codebook size and count, bitrate "
        "and the clip's decode options; --features latents writes its continuous latents. Folders are "
        "searched recursively and their tree is mirrored. Examples: sonotok encode clips/ -o latents/ ; "
        "sonotok encode clips/ -o codes/ --model facebook/encodec_24khz",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    add_features_option(p, "which latents", CODES_HELP)
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=_encode)

    p = subparsers.add_parser(
        "decode",
        help="latent or code files → audio",
        description="Decode latent files or code files written by `sonotok encode` (told apart by "
        "their content) back to audio, at the original file's sample rate and length unless "
        "--sample-rate is given; a code file's decode options (e.g. UniCodec's domain) are applied. "
        "Example: sonotok decode latents/ -o audio/",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="LATENTS",
        help="latent or code files (.safetensors), folders or glob patterns",
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
