#!/usr/bin/env bash
# The sonotok-mini recipe, end to end: corpus → semantic encoder (MAE) → tokenizer →
# latents → generator and denoiser → evaluation. Every trainer resumes, so re-running this
# script continues where it stopped; a GPU is used when present (accelerate picks it).
#   bash scripts/mini/train.sh WORK_DIR        (the bundled models used WORK_DIR=/work/mini)
# Then copy the exported models into sonotok/mini/ (see the last lines) and evaluate.
set -euo pipefail
W=${1:?usage: bash scripts/mini/train.sh WORK_DIR}
mkdir -p "$W"

[ -d "$W/corpus" ] || sonotok corpus make "$W/corpus" --speech 2400 --music 800 --sounds 1200 --noise 400
python scripts/mini/prepare_data.py "$W/corpus" "$W/data"

sonotok train semantic --config configs/semantic/small.yaml --data "$W/corpus/clips" \
  -o "$W/runs/semantic-small" --set train.max_steps=1200 --set train.batch_size=32 \
  --set optim.lr=7.5e-4 --set optim.warmup_steps=100 --set train.checkpoint_every=400 \
  --set data.num_workers=1 --resume

sonotok train tokenizer --config configs/tokenizer/mini.yaml \
  --set model.semantic_encoder="$W/runs/semantic-small/encoder" \
  --set "data.sources=[{path: $W/corpus/clips, type: hf, split: train}]" \
  --set "data.val_sources=[{path: $W/corpus/clips, type: hf, split: validation}]" \
  --set train.output_dir="$W/runs/tokenizer-mini" --resume

TOK="$W/runs/tokenizer-mini/model"
sonotok extract "$W/corpus/clips" --split train --model "$TOK" -o "$W/latents/train" --resume
sonotok train generation --config configs/generation/mini.yaml \
  --set data.path="$W/latents/train" --set train.output_dir="$W/runs/generation-mini"
sonotok train enhancement --config configs/enhancement/mini.yaml --set tokenizer="$TOK" \
  --set data.clean="$W/data/speech_train" --set data.noise="$W/data/noise_train" \
  --set output_dir="$W/runs/enhancement-mini"

python scripts/mini/bundle.py "$W/runs" sonotok/mini
python scripts/mini/evaluate.py "$W/corpus" "$W/data" "$W/eval"
