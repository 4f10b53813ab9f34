"""`sonotok train tokenizer`: train or fine-tune the tokenizer's acoustic branch and decoder.

Runs plainly (one CPU or GPU) or under `accelerate launch` (N GPUs, mixed precision):

    sonotok train tokenizer --config configs/tokenizer/tiny.yaml --set data.sources.0.path=wavs/
    accelerate launch --num_processes 8 -m sonotok.cli.train_tokenizer --config configs/tokenizer/paper.yaml
"""

from __future__ import annotations

import argparse
import sys

from sonotok.cli.common import (
    add_gan_training_options,
    gan_training_main,
    register_gan_training,
    report_checks,
    run_gan_training,
)

EXAMPLES = """examples:
  sonotok train tokenizer --config configs/tokenizer/tiny.yaml \\
      --set "data.sources=[{path: my_wavs/}]" --set train.output_dir=runs/tiny
  sonotok train tokenizer --config configs/tokenizer/paper.yaml --resume     # continue the last run
  accelerate launch --num_processes 8 --mixed_precision bf16 \\
      -m sonotok.cli.train_tokenizer --config configs/tokenizer/paper.yaml

Output (train.output_dir): model/ (load with AudioTokenizer.from_pretrained or --model),
checkpoints/step_*/, metrics.jsonl, tensorboard/ (tensorboard --logdir OUTPUT_DIR).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gan_training_options(parser, "configs/tokenizer/paper.yaml")


def check(config) -> int:
    """--check: the config loaded; the data sources are usable."""
    from sonotok.tokenizer.train.data import check_data

    data = config.data
    checks = check_data(data.sources + data.val_sources, data.segment_samples, data.silence_db)
    return report_checks(checks)


def train(config, **kwargs):
    from sonotok.tokenizer.train.trainer import train_tokenizer

    return train_tokenizer(config, **kwargs)


def run(args) -> int:
    from sonotok.tokenizer.train.recipe import TokenizerTrainConfig

    return run_gan_training(args, TokenizerTrainConfig, check, train, "tokenizer")


def register(subparsers) -> None:
    register_gan_training(
        subparsers,
        "tokenizer",
        add_arguments,
        run,
        help="train the tokenizer's acoustic branch + decoder (GAN, frozen semantic encoder)",
        description=__doc__.split("\n\n")[0]
        + " The semantic encoder stays frozen; losses 45·L_sem + 45·L_mel + L_fm + L_adv (paper).",
        epilog=EXAMPLES,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m sonotok.cli.train_tokenizer` (e.g. under accelerate launch)."""
    return gan_training_main(argv, "tokenizer", EXAMPLES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
