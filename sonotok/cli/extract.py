"""`sonotok extract` (dataset → latent dataset) and `sonotok embed` (files → embedding files).

Run standalone as `python -m sonotok.cli.extract extract ...`; the `sonotok`
command adds the same subcommands through `register`.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

from sonotok.cli.common import (
    CODES,
    CODES_HELP,
    Job,
    add_features_option,
    add_format_option,
    add_model_options,
    add_output_options,
    add_resume_option,
    check_feature,
    choose_model,
    encode_files,
    feature_choices,
    open_tokenizer,
)
from sonotok.core import options
from sonotok.core.errors import ConfigError, SonotokError
from sonotok.core.options import OptionParser

if TYPE_CHECKING:
    import torch

# sonotok.extraction.extract.LATENT_DTYPES, spelled out so `--help` imports no extraction code
# (tests/cli/test_startup.py checks that the two agree).
LATENT_DTYPES = ("float32", "float16", "bfloat16")

EXTRACT_HELP = """\
Encode every row of an audio dataset once and store the latents as a dataset that trainers
load with `datasets.load_from_disk(OUT)`: column `latents` (T, D) per row (or `embedding`
(D,) with --pool mean), `num_frames`, and every other source column (captions, labels, ids).
A discrete model (EnCodec, DAC, SQCodec, UniCodec, ...) stores its integer codes by default
(with --pool mean: the codes' embeddings; codes cannot be averaged): column `codes` (T, K)
(int16; int32 for codebooks over 32768 codes) and, for families whose decoder needs per-clip
options (UniCodec's domain), `decode_options` (JSON text). `--features codes,latents` adds
the codes' embeddings as `latents`; `--features latents` stores those only.
OUT/extract.json records the model's codebook size and count, frame rate and bitrate.

SOURCE is a folder of audio files, a folder written by `Dataset.save_to_disk`, a local data
folder/file `datasets.load_dataset` reads (parquet, csv, jsonl, audiofolder), or a hub id.
Audio is read from the dataset's Audio column (bytes or paths, any format soundfile reads)
or from a column of file paths; pick one with --audio-column.

Output is sharded (--shard-size rows per .arrow file). If the job stops — crash, SIGTERM,
preemption — run the same command with --resume: finished shards are kept, nothing is
duplicated. Several GPUs: `accelerate launch --multi_gpu --num_processes 8 -m sonotok.cli
extract ...` (each process takes every 8th shard; without GPUs the processes share the CPU
over gloo). Unreadable rows are skipped and listed in OUT/errors.jsonl (exit status 1).

examples:
  sonotok extract clips/ -o latents/clips
  sonotok extract my_dataset_dir --split train --audio-column audio -o latents/train --resume
  accelerate launch --multi_gpu --num_processes 4 -m sonotok.cli extract org/dataset -o latents/ds --dtype bf16
  sonotok extract esc50/ --features semantic --pool mean -o embeddings/esc50
  sonotok extract clips/ --model facebook/encodec_24khz --features codes,latents -o codes/clips
"""

EMBED_HELP = """\
Embed audio files: one output per input, mirroring folders. With --pool mean (default)
each file gives one (D,) vector; with --pool none the frame-level (T, D) sequence at 25 Hz.
Written as .safetensors (tensor "embedding" + metadata) or .npy. A discrete model's
embeddings are its codes' continuous embeddings (its codes: `sonotok encode`).

examples:
  sonotok embed clips/ -o emb/ --features semantic
  sonotok embed a.wav b.flac -o emb/ --pool none --format npy
"""


def _add_feature_options(p: argparse.ArgumentParser, default_pool: str, codes: str = "") -> None:
    add_features_option(p, "which latents", codes)
    p.add_argument(
        "--pool",
        default=default_pool,
        choices=["none", "mean"],
        help="none: frame-level (T, D) at 25 Hz; mean: one (D,) vector per clip (default: %(default)s)",
    )


def _load_model(args, device: torch.device):
    """(tokenizer, folder its weights were read from), or None after printing why not. The
    name (or default) is resolved once, so the files hashed for --resume are those loaded."""
    from sonotok.core.hub import HubMixin, resolve

    choose_model(args)
    try:
        # The files from_pretrained fetches; given a folder, it reads that folder as is.
        folder = resolve(args.model, allow_patterns=HubMixin.hub_files)
        model = open_tokenizer(str(folder), device, args.dtype)  # any registered family
    except SonotokError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    return model, folder


def _exit_on_sigterm() -> None:
    """SIGTERM (preemption, `kill`) → SystemExit so temporary files are removed on the way out."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _choose_columns(args, model) -> tuple[str | None, bool] | None:
    """extract's --features: comma-separated `codes` and/or one kind of continuous latents
    (default: a discrete model's codes, else — and with --pool mean, which cannot average
    codes — the model's default latents) → (the continuous features or None, whether codes
    are extracted); None after printing why not."""
    names = [n.strip() for n in (args.features or "").split(",") if n.strip()]
    names = names or [feature_choices(model, codes=args.pool != "mean")[0]]
    continuous = [n for n in names if n != CODES]
    problems = [p for n in names if (p := check_feature(n, model, True, args.model))]
    if len(continuous) > 1:
        problems.append(
            f"--features {args.features}: one kind of continuous latents per extraction "
            f"(and codes for a discrete model); pick one of {', '.join(continuous)}"
        )
    if problems:
        print(f"error: {problems[0]}", file=sys.stderr)
        return None
    return (continuous[0] if continuous else None), CODES in names


def _extract_config(args, features: str | None, codes: bool = False):
    from sonotok.extraction.extract import ExtractConfig

    return ExtractConfig(
        output=args.output,
        codes=codes,
        latents=features is not None,
        features=features,
        pool=args.pool,
        latent_dtype=args.latent_dtype,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        max_batch_seconds=args.max_batch_seconds,
        bucketing=not args.no_bucketing,
        num_workers=args.num_workers,
        resume=args.resume,
        overwrite=args.overwrite,
        source_info={
            "source": str(args.source),
            "split": args.split,
            "subset": args.subset,
            "audio_column": args.audio_column,
        },
    )


def run_extract(args) -> int:
    import torch
    from accelerate import PartialState

    from sonotok.core.io import disk_full_error, is_disk_full, remove_stale_temporaries
    from sonotok.core.options import resolve_device
    from sonotok.core.sources import AUDIO_EXTENSIONS, open_audio_source
    from sonotok.extraction.extract import PROGRESS_DIR, extract

    _exit_on_sigterm()
    # Processes started by `accelerate launch --multi_gpu` / torchrun on a machine without
    # GPUs (or with --device cpu) coordinate over gloo on the CPU.
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    device = state.device if state.num_processes > 1 or args.device == "auto" else None
    device = device if device is not None else resolve_device(args.device)
    try:
        with state.main_process_first():
            source = open_audio_source(
                args.source,
                split=args.split,
                subset=args.subset,
                audio_column=args.audio_column,
                id_column=args.id_column,
                audio_extensions=AUDIO_EXTENSIONS,
                class_from_folder=args.class_from_folder,
            )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    loaded = _load_model(args, device)
    if loaded is None:
        return 2
    model, folder = loaded
    columns = _choose_columns(args, model)
    if columns is None:
        return 2
    try:
        config = _extract_config(args, *columns)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # The model actually loaded (the default resolved), recorded so --resume can refuse another.
    config.model_name, config.model_folder = str(args.model), str(folder)
    if state.is_main_process:
        print(
            f"extract: {source.description}, {len(source.dataset)} rows, audio column "
            f"{source.audio_column!r} → {args.output} ({state.num_processes} process(es), {device})",
            file=sys.stderr,
        )
    if state.is_main_process:  # temporaries of a killed earlier run (a running one's are kept)
        remove_stale_temporaries([args.output, f"{args.output}/{PROGRESS_DIR}"])
    try:
        done = extract(
            model,
            source,
            config,
            rank=state.process_index,
            world=state.num_processes,
            barrier=state.wait_for_everyone,
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if not is_disk_full(err):
            raise
        print(
            f"error: {disk_full_error(err, err.filename or args.output)}; finished shards are "
            "kept: free some space and run the same command with --resume",
            file=sys.stderr,
        )
        return 1
    if state.is_main_process:
        totals = done["totals"]
        print(
            f"extract: {totals['rows']} rows ({totals['hours_of_audio']:.3f} h of audio), "
            f"{totals['errors']} unreadable (see {args.output}/errors.jsonl); this run "
            f"{done['hours_of_audio_per_hour']:.1f} h audio/h on process 0",
            file=sys.stderr,
        )
        return 1 if totals["errors"] else 0
    return 0


def run_embed(args) -> int:
    def save(job: Job, clip, z, model, features: str) -> None:
        z = z.mean(0) if args.pool == "mean" else z
        job.target.parent.mkdir(parents=True, exist_ok=True)
        save_embedding(
            job.target,
            z,
            {
                "model": str(args.model),
                "features": features,
                "pool": args.pool,
                "frame_rate": str(model.frame_rate),
                "source": str(job.source),
            },
        )

    suffix = ".npy" if args.format == "npy" else ".safetensors"
    return encode_files(args, suffix, "embed", save)


def save_embedding(path, embedding: torch.Tensor, metadata: dict[str, str]) -> None:
    """(D,) or (T, D) float32 → .safetensors (tensor "embedding" + metadata) or .npy, atomically.
    NaN/inf embeddings are refused (ModelOutputError) before anything is written."""
    from pathlib import Path

    import numpy as np
    from safetensors.torch import save_file

    from sonotok.core.io import atomic_output, check_finite

    path = Path(path)
    value = embedding.detach().float().contiguous().cpu()
    check_finite(value, "embedding", metadata.get("source", path))
    with atomic_output(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, value.numpy())
        else:
            save_file({"embedding": value}, str(tmp), metadata=metadata)


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "extract",
        help="audio dataset → latent dataset (sharded, resumable, multi-GPU)",
        description=EXTRACT_HELP,
        formatter_class=fmt,
    )
    p.add_argument("source", help="folder of audio, saved dataset folder, data folder or hub id")
    p.add_argument("--split", default=None, help="split to extract (default: the only one / train)")
    p.add_argument("--subset", default=None, help="dataset configuration name (load_dataset name=)")
    p.add_argument(
        "--audio-column", default=None, help="column holding audio (default: first Audio column)"
    )
    p.add_argument(
        "--id-column",
        default=None,
        help="column naming rows in errors.jsonl (default: id, key, ...)",
    )
    p.add_argument(
        "--class-from-folder",
        action="store_true",
        help="folder SOURCE: add a 'label' column holding each file's first sub-folder",
    )
    _add_feature_options(
        p,
        default_pool="none",
        codes=CODES_HELP + "; both columns: --features codes,latents",
    )
    p.add_argument(
        "--latent-dtype",
        default="float32",
        choices=list(LATENT_DTYPES),
        help="storage type of latents; bfloat16 is stored as uint16 bits (see README)",
    )
    p.add_argument(
        "--shard-size",
        type=options.positive_int,
        default=256,
        help="rows per shard (default: %(default)s)",
    )
    p.add_argument(
        "--max-batch-seconds",
        type=options.positive_float,
        default=320.0,
        help="cap on padded audio per batch, clips × longest (default: %(default)s)",
    )
    p.add_argument(
        "--no-bucketing",
        action="store_true",
        help="batch clips in source order instead of length-sorted buckets",
    )
    p.add_argument(
        "--num-workers",
        type=options.positive_int,
        default=4,
        help="audio decoding threads (default: %(default)s)",
    )
    add_resume_option(p, checkpoint=False, help="continue an interrupted run: keep finished shards")
    add_model_options(p)
    add_output_options(p, "output folder of the latent dataset (created if missing)")
    p.set_defaults(func=run_extract)

    p = subparsers.add_parser(
        "embed",
        help="audio files → embeddings (mean-pooled or frame-level)",
        description=EMBED_HELP,
        formatter_class=fmt,
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders or glob patterns")
    _add_feature_options(p, default_pool="mean")
    add_format_option(p, ("safetensors", "npy"), help="output file type (default: %(default)s)")
    add_model_options(p)
    add_output_options(p)
    p.set_defaults(func=run_embed)


def main(argv: list[str] | None = None) -> int:
    parser = OptionParser(prog="sonotok")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
