"""`sonotok probe`: linear and kNN probes on frozen tokenizer embeddings (X-ARES protocol)."""

from __future__ import annotations

import argparse
import sys

from sonotok.cli.common import (
    add_batch_option,
    add_device_option,
    add_dtype_option,
    add_model_option,
    add_output_options,
)
from sonotok.core import options
from sonotok.core.errors import ConfigError

PROBE_HELP = """\
Train and test probes on frozen embeddings with the X-ARES protocol: masked mean pooling →
LayerNorm → Linear, Adam lr 1e-3, batch 32, 10 epochs, cosine to 0.1×lr, best epoch on
validation; plus a kNN probe (k=10, temperature 0.07, cosine). Writes OUT/metrics.json and,
for multiclass tasks, OUT/confusion_linear.png and OUT/confusion_knn.png.

DATA is a folder-per-class tree (DATA/<class>/<file>.wav), a dataset `sonotok extract`
reads with a label column, or a latent dataset `sonotok extract` wrote. Embeddings are
cached under --cache-dir, keyed by data files, model and features.

Splits: a 'split' column (train/validation/test) if the data has one, else k folds
(--fold-column for predefined folds such as ESC-50's, or --folds stratified folds):
test = fold f, validation = fold f+1, train = the rest; metrics are averaged.

tasks:
  multiclass  one class per clip (--label-column, default 'label'); accuracy, confusion
  multilabel  a list of classes per clip (default 'labels'); BCE, mAP
  frame       sound events per clip (default 'events': [{label, onset, offset}] in s);
              per-frame LayerNorm → Linear, BCE, segment-based F1 (1 s segments)

examples:
  sonotok probe esc50_by_class/ -o runs/probe/esc50 --features semantic
  sonotok probe my_dataset --label-column genre --folds 10 -o runs/probe/genre
  sonotok probe latents/fsd50k --task multilabel -o runs/probe/fsd50k
"""


def run(args) -> int:
    from sonotok.evaluation.probe import ProbeConfig
    from sonotok.evaluation.probe_data import (
        embedded_dataset,
        embedding_model,
        probe_dataset,
        unreadable_clips,
    )
    from sonotok.evaluation.probe_report import run_probe

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in ("linear", "knn")]
    if bad or not methods:
        print(f"error: --methods {args.methods!r}; use linear, knn or linear,knn", file=sys.stderr)
        return 2
    try:
        data = embedded_dataset(
            args.data,
            args.model,
            args.features,
            args.task,
            cache_dir=args.cache_dir,
            split=args.split,
            audio_column=args.audio_column,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            label_column=args.label_column,
        )
        probe_data = probe_dataset(
            data,
            args.task,
            label_column=args.label_column,
            split_column=args.split_column,
            fold_column=args.fold_column,
            source=args.data,
        )
        overrides = {
            "epochs": args.epochs,
            "lr": args.lr,
            "batch_size": args.probe_batch_size,
            "seed": args.seed,
        }
        if args.config:
            config = ProbeConfig.from_yaml(args.config, **overrides)
        else:
            config = ProbeConfig(**{k: v for k, v in overrides.items() if v is not None})
        report = run_probe(
            probe_data,
            args.output,
            methods,
            config,
            num_folds=args.folds,
            settings={
                "data": args.data,
                "model": embedding_model(data) or args.model,  # what ran, default included
                "features": args.features,
            },
        )
    except (ConfigError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for m in methods:
        if m in report:
            values = ", ".join(
                f"{k} {v:.4f}" for k, v in report[m]["mean"].items() if not k.endswith("_std")
            )
            print(f"probe {m}: {values}", file=sys.stderr)
    print(f"probe: wrote {args.output}/metrics.json", file=sys.stderr)
    unreadable, listing = unreadable_clips(data)
    if unreadable:  # a mixed batch: the rest was probed, but the run did not use every input
        print(
            f"error: {len(unreadable)} clip(s) of {args.data} could not be read and were left "
            f"out of the probe (first: {unreadable[0].get('error')}); all are listed in {listing}",
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "probe",
        help="linear / kNN probes on frozen embeddings (X-ARES protocol)",
        description=PROBE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", help="folder-per-class tree, labelled dataset, or latent dataset")
    add_output_options(p, "folder for metrics.json and plots", overwrite=None)
    add_model_option(p)
    p.add_argument(
        "--features",
        default=None,
        metavar="NAME",
        help="which of the model's latents to probe (default: the model's own default; the "
        "DashengTokenizer has fused, semantic and acoustic)",
    )
    p.add_argument("--task", default="multiclass", choices=["multiclass", "multilabel", "frame"])
    p.add_argument(
        "--methods",
        default="linear,knn",
        help="comma-separated: linear, knn (kNN is for multiclass) (default: %(default)s)",
    )
    p.add_argument("--label-column", default=None, help="column with the targets")
    p.add_argument("--split-column", default=None, help="column with train/validation/test")
    p.add_argument("--fold-column", default=None, help="column with predefined folds")
    p.add_argument(
        "--folds",
        type=options.int_at_least(3),
        default=5,
        help="k for stratified k-fold, at least 3 (default: %(default)s)",
    )
    p.add_argument("--split", default=None, help="dataset split to read (load_dataset split=)")
    p.add_argument("--audio-column", default=None, help="column holding audio")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where embeddings are cached (default: $XDG_CACHE_HOME/sonotok/embeddings)",
    )
    add_device_option(p)
    add_dtype_option(p)
    add_batch_option(p, help="clips per embedding pass (default: %(default)s)")
    p.add_argument(
        "--config", default=None, help="probe settings YAML (e.g. configs/probe/xares.yaml)"
    )
    p.add_argument("--epochs", type=options.positive_int, default=None, help="default: X-ARES's 10")
    p.add_argument("--lr", type=options.positive_float, default=None, help="default: X-ARES's 1e-3")
    p.add_argument(
        "--probe-batch-size", type=options.positive_int, default=None, help="default: X-ARES's 32"
    )
    p.add_argument("--seed", type=options.seed, default=None, help="default: 0")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = options.OptionParser(prog="sonotok")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
