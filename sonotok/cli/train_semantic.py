"""`sonotok train semantic`: masked-autoencoder pretraining of a Dasheng-architecture encoder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sonotok.cli.common import (
    TRAIN_HELP,
    add_check_option,
    add_output_options,
    add_recipe_options,
    add_resume_option,
    command_group,
    report_checks,
)

EPILOG = """\
examples:
  sonotok corpus make corpus/
  sonotok train semantic --config configs/semantic/small.yaml --data corpus/clips -o runs/semantic-small
  sonotok train semantic --config configs/semantic/small.yaml --data corpus/clips -o runs/semantic-small --resume
  accelerate launch -m sonotok.cli train semantic --config configs/semantic/small.yaml --data corpus/clips

The encoder is written to OUTPUT/encoder (SemanticEncoder.save_pretrained) at every checkpoint;
build a tokenizer on it with AudioTokenizer.from_semantic_encoder or the tokenizer trainer's
model.semantic_encoder setting.
"""


def register(subparsers) -> None:
    train = command_group(subparsers, "train", TRAIN_HELP)
    p = train.add_parser(
        "semantic",
        help="pretrain a semantic encoder (Dasheng ViT) as a masked autoencoder",
        description="Masked-autoencoder pretraining (Dasheng's recipe: 75% of 64x4 mel patches "
        "masked, normalised-patch MSE) of a SemanticEncoder on your audio.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_options(p, "configs/semantic/tiny.yaml")
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="PATH",
        help="training audio: a folder of audio files or a Hugging Face dataset folder (e.g. "
        "corpus/clips from `sonotok corpus make`); repeatable; replaces data.sources",
    )
    add_output_options(p, "run folder (sets train.output_dir)", required=False, overwrite=None)
    add_resume_option(p)
    add_check_option(p)
    p.set_defaults(func=run_train)


def data_source(path: str) -> dict:
    """A data.sources entry for a path: hf for a saved dataset folder, else folder."""
    folder = Path(path)
    saved = any((folder / f).is_file() for f in ("dataset_dict.json", "state.json"))
    return {"path": str(path), "type": "hf" if saved else "folder"}


def run_train(args: argparse.Namespace) -> int:
    from sonotok.core.errors import SonotokError
    from sonotok.tokenizer.mae.config import SemanticTrainConfig
    from sonotok.tokenizer.mae.trainer import train_semantic
    from sonotok.tokenizer.train.config import load_config
    from sonotok.tokenizer.train.data import check_data

    overrides = list(args.overrides)
    if args.data:
        entries = ", ".join(
            "{" + ", ".join(f"{k}: {v!r}" for k, v in data_source(d).items()) + "}"
            for d in args.data
        )
        overrides.append(f"data.sources=[{entries}]")
    if args.output:
        overrides.append(f"train.output_dir={args.output!r}")
    try:
        config = load_config(SemanticTrainConfig, args.config, overrides)
        if getattr(args, "check", False):
            data = config.data
            checks = check_data(data.sources, data.segment_samples, data.silence_db)
            return report_checks(checks)
        result = train_semantic(config, resume=args.resume)
    except SonotokError as err:  # config, data, checkpoint, model: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.encoder_dir is not None:
        print(f"encoder: {result.encoder_dir} (step {result.step}, loss {result.loss})")
    return 0
