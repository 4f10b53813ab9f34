"""``sonotok eval reconstruct | enhance | generate``: metrics.json + report.html per run.

Exit status: 0 when every file was scored; 1 when some files could not be (one line each on
stderr, the rest still evaluated and reported); 2 when nothing could be evaluated (bad dataset
path, model or embedder that cannot be loaded).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sonotok.cli.common import add_device_option, add_model_option, choose_model, open_tokenizer
from sonotok.core import options
from sonotok.core.errors import SonotokError

DATA_HELP = (
    "a folder of audio files (sub-folders become domains), one audio file, a manifest "
    "(.csv/.tsv/.jsonl with a 'path' column and optional 'id', 'domain', 'caption'), or a "
    "Hugging Face dataset (save_to_disk folder, parquet folder or hub id)"
)


def register(subparsers) -> None:
    """Add the ``eval`` command and its sub-commands to the ``sonotok`` parser."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate reconstruction, enhancement or generation; writes metrics.json + report.html",
        description="Evaluate audio the way papers report it; every run writes OUT/metrics.json "
        "and OUT/report.html (static: open it from disk).",
    )
    tasks = parser.add_subparsers(dest="eval_task", metavar="TASK")
    parser.set_defaults(func=lambda args: _help(parser))

    rec = tasks.add_parser(
        "reconstruct",
        help="mel / STFT distance, PESQ, STOI, SI-SDR of tokenizer reconstructions",
        description="Encode and decode DATA with a tokenizer (--model) or read already decoded "
        "files (--decoded), and compare them with the inputs at 16 kHz.",
    )
    rec.add_argument("data", help=DATA_HELP)
    source = rec.add_mutually_exclusive_group()
    add_model_option(source)
    source.add_argument(
        "--decoded", help="folder/manifest of decoded files, paired with DATA by id"
    )
    add_device_option(rec)
    _common(rec, "runs/eval/reconstruct")
    rec.set_defaults(func=run_reconstruct)

    enh = tasks.add_parser(
        "enhance",
        help="PESQ, STOI, SI-SDR, DNSMOS P.835 and speaker similarity of enhanced speech",
        description="Score ENHANCED against CLEAN (and the NOISY inputs as the baseline); files "
        "are paired by id (same relative path, any audio extension).",
    )
    enh.add_argument("noisy", help="noisy inputs: " + DATA_HELP)
    enh.add_argument("enhanced", help="enhanced outputs, paired with CLEAN by id")
    enh.add_argument("clean", help="clean references")
    enh.add_argument(
        "--no-speaker-similarity", action="store_true", help="skip the resemblyzer speaker metric"
    )
    _common(enh, "runs/eval/enhance")
    enh.set_defaults(func=run_enhance)

    gen = tasks.add_parser(
        "generate",
        help="Fréchet distances (VGGish, PANNs, CLAP, sonotok), KL on PANNs tags, CLAP score",
        description="Compare a set of generated clips with a reference set. Embeddings are "
        "cached per file (content hash) under --cache-dir.",
    )
    gen.add_argument("generated", help="generated clips: " + DATA_HELP)
    gen.add_argument("reference", help="reference clips (paired by id for KL)")
    gen.add_argument("--captions", help=".csv/.tsv/.jsonl with 'id' and 'caption' (CLAP score)")
    gen.add_argument(
        "--embedders",
        default="vggish,panns,clap",
        help="comma-separated: vggish, panns, clap, laion_clap, sonotok (default: vggish,panns,clap)",
    )
    add_model_option(gen, what="tokenizer hub id or local folder for the 'sonotok' embedder")
    gen.add_argument("--vggish-weights", help="local vggish-10086976.pth (else downloaded)")
    gen.add_argument("--panns-weights", help="local CNN14 .pth (else downloaded)")
    gen.add_argument("--panns-variant", default="16k", choices=("16k", "32k"), help="CNN14 release")
    gen.add_argument(
        "--clap-model", help="ClapModel hub id or local folder (default laion/clap-htsat-unfused)"
    )
    gen.add_argument("--laion-clap-checkpoint", help="630k-audioset-best.pt for 'laion_clap'")
    gen.add_argument("--cache-dir", help="embedding cache (default ~/.cache/sonotok/embeddings)")
    gen.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    _common(gen, "runs/eval/generate")
    gen.set_defaults(func=run_generate)


def _common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument(
        "-o", "--output", default=default_out, help=f"output folder (default {default_out})"
    )
    # the spelling before every command used -o/--output; kept so old scripts still run
    parser.add_argument("--out", dest="output", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--examples",
        type=options.non_negative_int,
        default=8,
        help="items shown with players in report.html (default 8)",
    )
    parser.add_argument("--split", help="split of Hugging Face datasets with several (e.g. test)")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fail(message: str) -> int:
    print(f"sonotok eval: {message}", file=sys.stderr)
    return 2


def _finish(result: dict, examples, out: str) -> int:
    from sonotok.evaluation.report import write_report

    json_path, html_path = write_report(out, result, examples)
    for err in result["errors"]:
        message = (
            err["message"] if err["file"] in err["message"] else f"{err['file']}: {err['message']}"
        )
        print(f"error: {message}", file=sys.stderr)
    for warning in result.get("warnings") or ():
        print(f"warning: {warning['message']}", file=sys.stderr)
    for name, value in (result.get("set_metrics") or {}).items():
        print(f"{name}: {value if value is None else format(value, '.4f')}")
    for name, s in result["summary"].items():
        if s["mean"] is None:
            continue
        low, high = s["ci95_low"], s["ci95_high"]  # clipped to the metric's range
        interval = f" [{low:.4f}, {high:.4f}]" if low is not None else ""
        print(f"{name}: {s['mean']:.4f}{interval} (n={s['n']})")
    print(f"wrote {json_path} and {html_path}")
    scored = len(result["items"])
    if scored == 0:
        print("sonotok eval: no file could be evaluated", file=sys.stderr)
        return 2
    return 1 if result["errors"] else 0


def run_reconstruct(args) -> int:
    from sonotok.evaluation.data import discover
    from sonotok.evaluation.reconstruct import (
        decoded_files_reconstructor,
        evaluate_reconstruction,
        tokenizer_reconstructor,
    )

    try:
        items = discover(args.data, args.split)
        if args.decoded is None:
            choose_model(args)
            tokenizer = open_tokenizer(args.model, args.device)  # any registered family
            reconstruct = tokenizer_reconstructor(tokenizer)
            settings = {"model": args.model}
        else:
            reconstruct = decoded_files_reconstructor(
                {it.id: it for it in discover(args.decoded, args.split)}
            )
            settings = {"decoded": args.decoded}
    except (SonotokError, OSError) as err:
        return _fail(str(err))
    settings["data"] = args.data
    result, examples = evaluate_reconstruction(
        items, reconstruct, num_examples=args.examples, settings=settings
    )
    return _finish(result, examples, args.output)


def run_enhance(args) -> int:
    from sonotok.evaluation.data import EvaluationInputError, discover
    from sonotok.evaluation.enhance import evaluate_enhancement
    from sonotok.evaluation.quality import MissingDependencyError

    try:
        noisy, enhanced, clean = (
            discover(args.noisy, args.split),
            discover(args.enhanced, args.split),
            discover(args.clean, args.split),
        )
        settings = {"noisy": args.noisy, "enhanced": args.enhanced, "clean": args.clean}
        result, examples = evaluate_enhancement(
            noisy,
            enhanced,
            clean,
            speaker_similarity=not args.no_speaker_similarity,
            num_examples=args.examples,
            settings=settings,
        )
    except (EvaluationInputError, MissingDependencyError) as err:
        return _fail(str(err))
    return _finish(result, examples, args.output)


def run_generate(args) -> int:
    from sonotok.evaluation.data import EvaluationInputError, discover, read_captions
    from sonotok.evaluation.embedders import (
        EmbedderUnavailableError,
        EmbeddingCache,
        build_embedder,
        default_cache_dir,
    )
    from sonotok.evaluation.generate import evaluate_generation

    try:
        generated = discover(args.generated, args.split)
        reference = discover(args.reference, args.split)
        captions = read_captions(args.captions) if args.captions else None
    except EvaluationInputError as err:
        return _fail(str(err))
    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    if "sonotok" in names:
        choose_model(args)
    options = {
        "model": args.model,
        "vggish_weights": args.vggish_weights,
        "panns_weights": args.panns_weights,
        "panns_variant": args.panns_variant,
        "clap_model": args.clap_model,
        "laion_clap_checkpoint": args.laion_clap_checkpoint,
    }
    embedders, failed = {}, []
    for name in names:
        try:
            embedders[name] = build_embedder(name, **options)
        except (EmbedderUnavailableError, OSError, ValueError) as err:
            failed.append(name)
            print(f"sonotok eval: embedder {name}: {err}", file=sys.stderr)
    if not embedders:
        return _fail("no embedder could be loaded; see the messages above")
    if captions and not any(hasattr(e, "embed_text") for e in embedders.values()):
        print(
            "sonotok eval: --captions given but no CLAP embedder is loaded; clap_score is skipped",
            file=sys.stderr,
        )
    cache = EmbeddingCache(None if args.no_cache else Path(args.cache_dir or default_cache_dir()))
    settings = {"generated": args.generated, "reference": args.reference}
    if "sonotok" in embedders:
        settings["model"] = args.model
    if failed:
        settings["embedders_unavailable"] = ", ".join(failed)
    result, examples = evaluate_generation(
        generated,
        reference,
        embedders,
        cache=cache,
        captions=captions,
        num_examples=args.examples,
        settings=settings,
    )
    status = _finish(result, examples, args.output)
    return max(status, 1) if failed else status
