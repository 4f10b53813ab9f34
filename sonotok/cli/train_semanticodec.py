"""`sonotok train semanticodec`: train SemantiCodec's latent diffusion decoder.

The options and data settings are those of `sonotok train codec` (`data.sources`, --set,
--resume, --stop-after-steps, --check, --no-tensorboard):

    sonotok train semanticodec --config configs/semanticodec/tiny.yaml \
        --set "data.sources=[{path: my_wavs/}]"
    accelerate launch -m sonotok.cli.train_semanticodec --config configs/semanticodec/full.yaml \
        --set "data.sources=[{path: data/audio/}]"
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
  sonotok train semanticodec --config configs/semanticodec/tiny.yaml \\
      --set "data.sources=[{path: my_wavs/}]" --set train.output_dir=runs/semanticodec-tiny
  sonotok train semanticodec --config configs/semanticodec/full.yaml \\
      --set "data.sources=[{path: data/audio/}]" --set model.codec=haoheliu/SemantiCodec:100tps-16384
  sonotok train semanticodec --config configs/semanticodec/tiny.yaml \\
      --set "data.sources=[{path: my_wavs/}]" --resume     # continue the last run
  accelerate launch -m sonotok.cli.train_semanticodec --config configs/semanticodec/full.yaml \\
      --set "data.sources=[{path: data/audio/}]"

Output (train.output_dir): model/ (the codec, encoder + trained decoder, save_pretrained; load
with `sonotok decode --model OUTPUT_DIR/model` or load_tokenizer), checkpoints/step_*/,
metrics.jsonl, tensorboard/.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gan_training_options(parser, "configs/semanticodec/tiny.yaml")


def check(config) -> int:
    """--check: the data sources hold usable 10.24 s crops (the codec is built by training)."""
    from sonotok.tokenizer.train.data import check_data

    data = config.data
    checks = check_data(data.sources + data.val_sources, data.segment_samples, data.silence_db)
    code = report_checks(checks)
    print(f"  model: {config.model.codec} (decoder_size {config.model.decoder_size} if new)")
    return code


def train(config, **kwargs):
    from sonotok.tokenizer.semanticodec.train_decoder import train as train_decoder

    return train_decoder(config, **kwargs)


def run(args) -> int:
    from sonotok.tokenizer.semanticodec.train_decoder import DecoderTrainConfig

    return run_gan_training(args, DecoderTrainConfig, check, train, "codec")


def register(subparsers) -> None:
    register_gan_training(
        subparsers,
        "semanticodec",
        add_arguments,
        run,
        help="train SemantiCodec's latent diffusion decoder (and its acoustic encoder)",
        description="v-prediction latent diffusion on the VAE latents of 10.24 s crops, "
        "conditioned on the codec's quantized features (classifier-free-guidance dropout); "
        "VAE, HiFi-GAN and the semantic branch frozen.",
        epilog=EXAMPLES,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m sonotok.cli.train_semanticodec` (e.g. under accelerate launch)."""
    return gan_training_main(argv, "semanticodec", EXAMPLES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
