"""`sonotok train tokenizer`: train or fine-tune the tokenizer's acoustic branch and decoder.

Runs plainly (one CPU or GPU) or under `accelerate launch` (N GPUs, mixed precision):

    sonotok train tokenizer --config configs/tokenizer/tiny.yaml --set data.sources.0.path=wavs/
    accelerate launch --num_processes 8 -m sonotok.cli.train_tokenizer --config configs/tokenizer/paper.yaml
"""

from __future__ import annotations

import sys

from sonotok.cli.common import TrainingCommand

EXAMPLES = """examples:
  sonotok train tokenizer --config configs/tokenizer/tiny.yaml \\
      --set "data.sources=[{path: my_wavs/}]" --set train.output_dir=runs/tiny
  sonotok train tokenizer --config configs/tokenizer/paper.yaml --resume     # continue the last run
  accelerate launch --num_processes 8 --mixed_precision bf16 \\
      -m sonotok.cli.train_tokenizer --config configs/tokenizer/paper.yaml

Output (train.output_dir): model/ (load with AudioTokenizer.from_pretrained or --model),
checkpoints/step_*/, metrics.jsonl, tensorboard/ (tensorboard --logdir OUTPUT_DIR).
"""


COMMAND = TrainingCommand(
    name="tokenizer",
    example_config="configs/tokenizer/paper.yaml",
    config_class="sonotok.tokenizer.train.recipe:TokenizerTrainConfig",
    trainer="sonotok.tokenizer.train.trainer:train_tokenizer",
    help="train the tokenizer's acoustic branch + decoder (GAN, frozen semantic encoder)",
    description=__doc__.split("\n\n")[0]
    + " The semantic encoder stays frozen; losses 45·L_sem + 45·L_mel + L_fm + L_adv (paper).",
    examples=EXAMPLES,
    saved="tokenizer",
)
register = COMMAND.register
main = COMMAND.main

if __name__ == "__main__":
    sys.exit(main())
