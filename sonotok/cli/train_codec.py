"""`sonotok train codec`: train or fine-tune a discrete codec (SQCodec, UniCodec, ...) as a GAN.

Runs plainly (one CPU or GPU) or under `accelerate launch` (N GPUs, mixed precision):

    sonotok train codec --config configs/codec/tiny.yaml --set model.family=NAME \
        --set data.sources.0.path=wavs/
    accelerate launch --num_processes 8 -m sonotok.cli.train_codec --config configs/codec/FILE.yaml
"""

from __future__ import annotations

import sys

from sonotok.cli.common import TrainingCommand

EXAMPLES = """examples:
  sonotok train codec --config configs/codec/tiny.yaml --set model.family=sqcodec \\
      --set "data.sources=[{path: my_wavs/}]" --set train.output_dir=runs/codec-tiny
  sonotok train codec --config configs/codec/tiny.yaml --resume     # continue the last run
  accelerate launch --num_processes 8 --mixed_precision bf16 \\
      -m sonotok.cli.train_codec --config configs/codec/FILE.yaml

Output (train.output_dir): model/ (load with load_tokenizer or --model), checkpoints/step_*/,
metrics.jsonl, tensorboard/ (tensorboard --logdir OUTPUT_DIR).
"""


def describe(config) -> str:
    """--check: the codec builds from model.* and the crops fit its frames."""
    from sonotok.tokenizer.train.codec import check_model

    codec = check_model(config)
    return (
        f"{config.model.family}: {codec.codebook_size} codes × {codec.num_codebooks} "
        f"codebook(s) at {codec.frame_rate:g} Hz, {codec.sample_rate} Hz audio"
    )


COMMAND = TrainingCommand(
    name="codec",
    example_config="configs/codec/tiny.yaml",
    config_class="sonotok.tokenizer.train.codec_recipe:CodecTrainConfig",
    trainer="sonotok.tokenizer.train.codec:train_codec",
    help="train a discrete codec family (GAN: mel + feature matching + its quantizer's losses)",
    description=__doc__.split("\n\n")[0]
    + " Losses: mel·L_mel + L_fm + L_adv (hinge or least squares) + the codec's own terms.",
    examples=EXAMPLES,
    saved="codec",
    describe=describe,
)
register = COMMAND.register
main = COMMAND.main

if __name__ == "__main__":
    sys.exit(main())
