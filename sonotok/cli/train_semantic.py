"""`sonotok train semantic`: masked-autoencoder pretraining of a Dasheng-architecture encoder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sonotok.cli.tokenize import command_group

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
    train = command_group(
        subparsers, "train", "train a model: sonotok train WHAT --config FILE [--set KEY=VALUE ...]"
    )
    p = train.add_parser(
        "semantic",
        help="pretrain a semantic encoder (Dasheng ViT) as a masked autoencoder",
        description="Masked-autoencoder pretraining (Dasheng's recipe: 75% of 64x4 mel patches "
        "masked, normalised-patch MSE) of a SemanticEncoder on your audio.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config", type=Path, required=True, help="YAML recipe, e.g. configs/semantic/tiny.yaml"
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="PATH",
        help="training audio: a folder of audio files or a Hugging Face dataset folder (e.g. "
        "corpus/clips from `sonotok corpus make`); repeatable; replaces data.sources",
    )
    p.add_argument("-o", "--output", default=None, help="run folder (sets train.output_dir)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=1000 (repeatable)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="CHECKPOINT",
        help="continue a run: its latest checkpoint (no value) or a step_XXXXXXXX folder",
    )
    p.add_argument(
        "--check", action="store_true", help="only validate the config and data sources, then exit"
    )
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
            print(f"config OK; data sources hold {[c.items for c in checks]} items")
            print("\n".join(f"  {c.summary()}" for c in checks))
            return 0
        result = train_semantic(config, resume=args.resume)
    except SonotokError as err:  # config, data, checkpoint, model: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.encoder_dir is not None:
        print(f"encoder: {result.encoder_dir} (step {result.step}, loss {result.loss})")
    return 0
