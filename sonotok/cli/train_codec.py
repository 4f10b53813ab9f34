"""`sonotok train codec`: train or fine-tune a discrete codec (SQCodec, UniCodec, ...) as a GAN.

Runs plainly (one CPU or GPU) or under `accelerate launch` (N GPUs, mixed precision):

    sonotok train codec --config configs/codec/tiny.yaml --set model.family=NAME \
        --set data.sources.0.path=wavs/
    accelerate launch --num_processes 8 -m sonotok.cli.train_codec --config configs/codec/FILE.yaml
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
  sonotok train codec --config configs/codec/tiny.yaml --set model.family=sqcodec \\
      --set "data.sources=[{path: my_wavs/}]" --set train.output_dir=runs/codec-tiny
  sonotok train codec --config configs/codec/tiny.yaml --resume     # continue the last run
  accelerate launch --num_processes 8 --mixed_precision bf16 \\
      -m sonotok.cli.train_codec --config configs/codec/FILE.yaml

Output (train.output_dir): model/ (load with load_tokenizer or --model), checkpoints/step_*/,
metrics.jsonl, tensorboard/ (tensorboard --logdir OUTPUT_DIR).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gan_training_options(parser, "configs/codec/tiny.yaml")


def check(config) -> int:
    """--check: the codec builds from model.* and the crops fit its frames; data is usable."""
    from sonotok.tokenizer.train.codec import check_model
    from sonotok.tokenizer.train.data import check_data

    codec = check_model(config)
    data = config.data
    checks = check_data(data.sources + data.val_sources, data.segment_samples, data.silence_db)
    code = report_checks(checks)
    print(
        f"  model: {config.model.family}: {codec.codebook_size} codes × {codec.num_codebooks} "
        f"codebook(s) at {codec.frame_rate:g} Hz, {codec.sample_rate} Hz audio"
    )
    return code


def train(config, **kwargs):
    from sonotok.tokenizer.train.codec import train_codec

    return train_codec(config, **kwargs)


def run(args) -> int:
    from sonotok.tokenizer.train.codec_recipe import CodecTrainConfig

    return run_gan_training(args, CodecTrainConfig, check, train, "codec")


def register(subparsers) -> None:
    register_gan_training(
        subparsers,
        "codec",
        add_arguments,
        run,
        help="train a discrete codec family (GAN: mel + feature matching + its quantizer's losses)",
        description=__doc__.split("\n\n")[0]
        + " Losses: mel·L_mel + L_fm + L_adv (hinge or least squares) + the codec's own terms.",
        epilog=EXAMPLES,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m sonotok.cli.train_codec` (e.g. under accelerate launch)."""
    return gan_training_main(argv, "codec", EXAMPLES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
