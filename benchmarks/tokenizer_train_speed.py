"""Tokenizer training throughput: steps/s, samples/s and peak memory per device.

Runs the real trainer step (discriminator + generator updates, frozen semantic encoder) of
a recipe (default: configs/tokenizer/paper.yaml, ~805M-parameter tokenizer, random
weights: speed does not depend on them) on generated audio, and prints what was measured.
As a same-run reference it also times one inference pass (encode + decode) of the same
batch, so the "train step / inference" ratio is comparable across machines.

    python benchmarks/tokenizer_train_speed.py --per-device-batch 8              # one GPU
    accelerate launch --num_processes 8 benchmarks/tokenizer_train_speed.py      # 8 GPUs
    python benchmarks/tokenizer_train_speed.py --per-device-batch 1 --steps 3    # CPU smoke
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]


def make_audio(folder: Path, count: int = 32, seconds: float = 4.0, sr: int = 16000) -> None:
    """Sines with an envelope plus noise, like the test fixtures."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    for i in range(count):
        x = sum(
            rng.uniform(0.2, 1) * np.sin(2 * np.pi * rng.uniform(80, 7000) * t + rng.uniform(0, 6))
            for _ in range(4)
        )
        x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"{i:03d}.wav", (0.5 * x / np.abs(x).max()).astype(np.float32), sr)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB (process RSS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "tokenizer" / "paper.yaml"))
    parser.add_argument(
        "--per-device-batch", type=int, default=None, help="default: 8 on GPU, 1 on CPU"
    )
    parser.add_argument(
        "--segment-samples", type=int, default=None, help="default: the config's crop"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    parser.add_argument(
        "--semantic-encoder", default=None, help="real Dasheng weights (default: random)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from accelerate import PartialState

    from sonotok.tokenizer.train import TokenizerTrainConfig, load_config
    from sonotok.tokenizer.train.trainer import TokenizerTrainer

    state = PartialState()
    device = state.device
    per_device = args.per_device_batch or (8 if device.type == "cuda" else 1)
    # one folder for all processes of a launch (they share the launcher as parent)
    work = Path(tempfile.gettempdir()) / f"sonotok_tok_bench_{os.getppid()}"
    audio_dir = work / "audio"
    if state.is_main_process:
        audio_dir.mkdir(parents=True, exist_ok=True)
        make_audio(audio_dir)
    state.wait_for_everyone()

    overrides = [
        f"data.sources=[{{path: {audio_dir}}}]",
        "data.val_sources=[]",
        f"model.semantic_encoder={args.semantic_encoder or 'null'}",
        "model.pretrained=null",
        f"train.batch_size={per_device * state.num_processes}",
        "train.grad_accum=1",
        f"train.output_dir={work / 'run'}",
        "train.val_every=0",
        "train.audio_every=0",
        "train.checkpoint_every=1000000",
        "train.progress=false",
        f"data.num_workers={args.workers}",
        *args.overrides,
    ]
    if args.segment_samples:
        overrides.append(f"data.segment_samples={args.segment_samples}")
    config = load_config(TokenizerTrainConfig, args.config, overrides)
    trainer = TokenizerTrainer(config, log_with=None)
    batches = trainer.batches()
    for _ in range(args.warmup):
        trainer.advance(next(batches))
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.advance(next(batches))
    sync(device)
    elapsed = time.perf_counter() - start
    step_s = elapsed / args.steps
    peak = peak_memory_gib(device)

    audio = next(batches)[0]["audio"].to(device)
    gen = trainer.accelerator.unwrap_model(trainer.gen)
    with torch.no_grad():
        sync(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            gen(audio, trainer.semantic_latents(audio))
        sync(device)
        infer_s = (time.perf_counter() - t0) / args.steps

    peaks = trainer.accelerator.gather(torch.tensor([peak], device=device)).tolist()
    if state.is_main_process:
        n_g = sum(p.numel() for p in gen.parameters())
        n_d = sum(p.numel() for p in trainer.discriminators.parameters())
        n_s = sum(p.numel() for p in trainer.tokenizer.semantic.parameters())
        seg = config.data.segment_samples
        name = (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
        )
        print(
            f"recipe            {Path(args.config).name} (+{len(args.overrides)} overrides), mixed precision {config.train.mixed_precision}"
        )
        print(f"device            {name} × {state.num_processes} process(es)")
        print(
            f"parameters        trained generator {n_g / 1e6:.1f}M, discriminators {n_d / 1e6:.1f}M, frozen semantic {n_s / 1e6:.1f}M"
        )
        print(
            f"per-device batch  {per_device} crops × {seg} samples ({seg / 16000:.2f} s); global batch {per_device * state.num_processes}"
        )
        print(f"timed             {args.steps} steps after {args.warmup} warm-up steps")
        print(f"steps/s           {1 / step_s:.3f}   ({step_s:.3f} s/step)")
        print(
            f"samples/s         {per_device * state.num_processes / step_s:.2f}   (audio seconds/s {per_device * state.num_processes * seg / 16000 / step_s:.2f})"
        )
        print(
            f"peak memory       {', '.join(f'{p:.2f}' for p in peaks)} GiB per device ({'CUDA allocated' if device.type == 'cuda' else 'process max RSS'})"
        )
        print(
            f"reference         one inference pass (encode+decode) of the same batch: {infer_s:.3f} s; train step = {step_s / infer_s:.1f}× inference"
        )
    state.wait_for_everyone()
    if state.is_main_process:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
