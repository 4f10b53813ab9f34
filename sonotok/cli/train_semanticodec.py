"""`sonotok train semanticodec`: train SemantiCodec's latent diffusion decoder.

The options and data settings are those of `sonotok train codec` (`data.sources`, --set,
--resume, --stop-after-steps, --check, --no-tensorboard):

    sonotok train semanticodec --config configs/semanticodec/tiny.yaml \
        --set "data.sources=[{path: my_wavs/}]"
    accelerate launch -m sonotok.cli.train_semanticodec --config configs/semanticodec/full.yaml \
        --set "data.sources=[{path: data/audio/}]"
"""

from __future__ import annotations

import sys

from sonotok.cli.common import TrainingCommand

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


def describe(config) -> str:
    """--check's model line (the codec is built by training)."""
    return f"{config.model.codec} (decoder_size {config.model.decoder_size} if new)"


COMMAND = TrainingCommand(
    name="semanticodec",
    example_config="configs/semanticodec/tiny.yaml",
    config_class="sonotok.tokenizer.semanticodec.train_decoder:DecoderTrainConfig",
    trainer="sonotok.tokenizer.semanticodec.train_decoder:train",
    help="train SemantiCodec's latent diffusion decoder (and its acoustic encoder)",
    description="v-prediction latent diffusion on the VAE latents of 10.24 s crops, "
    "conditioned on the codec's quantized features (classifier-free-guidance dropout); "
    "VAE, HiFi-GAN and the semantic branch frozen.",
    examples=EXAMPLES,
    saved="codec",
    describe=describe,
)
register = COMMAND.register
main = COMMAND.main

if __name__ == "__main__":
    sys.exit(main())
