"""`sonotok train semanticodec`: train SemantiCodec's latent diffusion decoder."""

from __future__ import annotations

import argparse
import sys

from sonotok.cli.common import (
    TRAIN_HELP,
    add_output_options,
    add_recipe_options,
    add_resume_option,
    command_group,
)

EPILOG = """\
examples:
  sonotok train semanticodec --config configs/semanticodec/tiny.yaml -o runs/semanticodec-tiny
  sonotok train semanticodec --config configs/semanticodec/full.yaml --data data/audio \\
      --set model.codec=haoheliu/SemantiCodec:100tps-16384 -o runs/semanticodec
  accelerate launch -m sonotok.cli train semanticodec --config configs/semanticodec/full.yaml

The codec (encoder + trained decoder) is written to OUTPUT/model (save_pretrained) at every
checkpoint; load it with `sonotok decode --model OUTPUT/model` or load_tokenizer.
"""


def register(subparsers) -> None:
    train = command_group(subparsers, "train", TRAIN_HELP)
    p = train.add_parser(
        "semanticodec",
        help="train SemantiCodec's latent diffusion decoder (and its acoustic encoder)",
        description="v-prediction latent diffusion on the VAE latents of 10.24 s crops, "
        "conditioned on the codec's quantized features (classifier-free-guidance dropout); "
        "VAE, HiFi-GAN and the semantic branch frozen.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_options(p, "configs/semanticodec/tiny.yaml")
    p.add_argument("--data", metavar="SOURCE", help="training audio (sets data.source)")
    add_output_options(p, "run folder (sets train.output_dir)", required=False, overwrite=None)
    add_resume_option(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from sonotok.core.errors import SonotokError
    from sonotok.tokenizer.semanticodec.train_decoder import load_config, train

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.source={args.data!r}")
    if args.output:
        overrides.append(f"train.output_dir={args.output!r}")
    try:
        result = train(load_config(args.config, overrides), resume=args.resume)
    except SonotokError as err:  # config, data, checkpoint, model: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.model_dir is not None:
        print(f"model: {result.model_dir} (step {result.step}, loss {result.loss})")
    else:
        print(f"stopped at step {result.step}; continue with --resume")
    return 0
