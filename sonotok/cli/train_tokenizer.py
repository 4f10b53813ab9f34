"""`sonotok train tokenizer`: train or fine-tune the tokenizer's acoustic branch and decoder.

Runs plainly (one CPU or GPU) or under `accelerate launch` (N GPUs, mixed precision):

    sonotok train tokenizer --config configs/tokenizer/tiny.yaml --set data.sources.0.path=wavs/
    accelerate launch --num_processes 8 -m sonotok.cli.train_tokenizer --config configs/tokenizer/paper.yaml
"""

from __future__ import annotations

import argparse
import sys

from sonotok.cli.common import (
    TRAIN_HELP,
    add_check_option,
    add_recipe_options,
    add_resume_option,
    command_group,
    report_checks,
)
from sonotok.core.errors import SonotokError
from sonotok.core.options import OptionParser, positive_int

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
    add_recipe_options(parser, "configs/tokenizer/paper.yaml")
    add_resume_option(parser)
    parser.add_argument(
        "--stop-after-steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="checkpoint and stop after N steps of this invocation (for time-limited jobs; resume later)",
    )
    parser.add_argument(
        "--no-tensorboard", action="store_true", help="do not write TensorBoard logs"
    )
    add_check_option(parser)


def run(args) -> int:
    from sonotok.tokenizer.train.config import load_config
    from sonotok.tokenizer.train.recipe import TokenizerTrainConfig

    try:
        config = load_config(TokenizerTrainConfig, args.config, args.overrides)
        if args.check:
            from sonotok.tokenizer.train.data import check_data

            data = config.data
            checks = check_data(
                data.sources + data.val_sources, data.segment_samples, data.silence_db
            )
            return report_checks(checks)
        from sonotok.tokenizer.train.trainer import train_tokenizer

        result = train_tokenizer(
            config,
            resume=args.resume,
            stop_after_steps=args.stop_after_steps,
            log_with=None if args.no_tensorboard else "tensorboard",
        )
    except SonotokError as err:  # config, data, checkpoint, model: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.model_dir is not None:  # a stop was already reported by the trainer
        print(f"trained {result.step} steps; tokenizer saved to {result.model_dir}")
    return 0


def register(subparsers) -> None:
    group = command_group(subparsers, "train", TRAIN_HELP)
    parser = group.add_parser(
        "tokenizer",
        help="train the tokenizer's acoustic branch + decoder (GAN, frozen semantic encoder)",
        description=__doc__.split("\n\n")[0]
        + " The semantic encoder stays frozen; losses 45·L_sem + 45·L_mel + L_fm + L_adv (paper).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m sonotok.cli.train_tokenizer` (e.g. under accelerate launch)."""
    parser = OptionParser(
        prog="sonotok train tokenizer",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
