"""Peak memory of encoding and decoding long audio: does it grow with duration?

Each duration runs in a fresh process. Reported per step: peak memory above the level
before the call, the size of that step's output (latents or audio, which must exist), and
the difference — the working memory, which should stay flat as duration grows.

    python benchmarks/long_audio_memory.py --minutes 10 60 [--config tiny|full] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(minutes: float, config: str, device: str) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from memory import PeakMemory

    from sonotok.tokenizer import AudioTokenizer, TokenizerConfig

    torch.manual_seed(0)
    model = AudioTokenizer(TokenizerConfig.tiny() if config == "tiny" else TokenizerConfig()).to(
        device
    )
    wave = (0.1 * torch.randn(int(minutes * 60 * 16000))).to(device)
    model.encode(wave[: 16000 * 30])  # warm-up: allocator and kernels
    result = {"minutes": minutes}
    t0 = time.perf_counter()
    with PeakMemory(device) as mem:
        z = model.encode(wave)
    result["encode"] = {
        "peak_mb": mem.peak_mb,
        "output_mb": z.numel() * 4 / 2**20,
        "seconds": time.perf_counter() - t0,
    }
    t0 = time.perf_counter()
    with PeakMemory(device) as mem:
        y = model.decode(z)
    result["decode"] = {
        "peak_mb": mem.peak_mb,
        "output_mb": y.numel() * 4 / 2**20,
        "seconds": time.perf_counter() - t0,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", nargs="+", type=float, default=[10, 60])
    parser.add_argument(
        "--config",
        choices=["tiny", "full"],
        default="tiny",
        help="tiny: same streaming code at a size a CPU finishes in minutes",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.config, args.device)))
        return
    print(f"config={args.config} device={args.device}")
    print(
        f"{'minutes':>7} {'step':>6} {'peak MiB':>9} {'output MiB':>10} {'working MiB':>11} {'seconds':>8}"
    )
    for minutes in args.minutes:
        # A fixed mmap threshold makes glibc return freed tensors to the OS, so the
        # sampled RSS follows live memory instead of the allocator's high-water mark.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                str(minutes),
                "--config",
                args.config,
                "--device",
                args.device,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        for step in ("encode", "decode"):
            r = result[step]
            print(
                f"{minutes:7.0f} {step:>6} {r['peak_mb']:9.0f} {r['output_mb']:10.0f} "
                f"{r['peak_mb'] - r['output_mb']:11.0f} {r['seconds']:8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
