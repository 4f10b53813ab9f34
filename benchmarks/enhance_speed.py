"""Real-time factor and peak memory of speech enhancement on a long file: sonotok vs the reference.

Measures, each in its own subprocess (clean peak-memory numbers), on one synthetic file:
- ours-official: EnhancementPipeline with the dasheng-denoiser architecture at full size
  (random weights; 10 s chunks with 1 s crossfade, bounded memory);
- ours-tokenizer (optional, --tokenizer): the paper system, DashengTokenizer (~805M) + a
  3-layer 1280-d denoiser, at full size with random weights;
- reference: xiaomi-research/dasheng-denoiser's `denoiser` module at full size (random
  weights), whole file in one pass (its only mode). It needs torchaudio, dasheng and vocos,
  so it runs under another interpreter (--reference-python) with the reference package copy
  in --reference-dir; its address space is capped (--reference-max-gb) so a file too long
  for its global attention fails with "out of memory" instead of exhausting the machine.
  Then it is also measured on --fallback-minutes, next to ours at the same length.

Each measurement is the fastest of --repeats runs (shared machines are noisy).
RTF = processing seconds / audio seconds (lower is faster). Peak memory: process max RSS on
CPU, torch.cuda.max_memory_allocated on GPU.

    python benchmarks/enhance_speed.py                       # 10 minutes, device auto
    python benchmarks/enhance_speed.py --minutes 2 --tokenizer --device cuda
    python benchmarks/enhance_speed.py --reference-python REFENV/bin/python --reference-dir REF
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SR = 16000


def test_signal(seconds: float) -> np.ndarray:
    """Speech-like stand-in: gliding harmonics with a syllable-rate envelope, plus noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (
        0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    )
    x = 0.3 * voice / np.abs(voice).max() + 0.05 * rng.standard_normal(t.shape[0])
    return x.astype(np.float32)


def randomise_bn(bn) -> None:
    import torch

    with torch.no_grad():
        bn.running_mean.copy_(-30 + 5 * torch.randn_like(bn.running_mean))
        bn.running_var.copy_(400 * (1 + 0.2 * torch.rand_like(bn.running_var)))


def peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker_ours(kind: str, seconds: float, device: str, repeats: int) -> dict:
    import torch

    from sonotok.enhancement import (
        DashengDenoiser,
        DenoiserConfig,
        EnhancementPipeline,
        LatentDenoiser,
        TokenizerDenoiser,
    )

    torch.manual_seed(0)
    if kind == "official":
        model = DashengDenoiser()
        randomise_bn(model.encoder.init_bn)
    else:
        from sonotok.tokenizer import AudioTokenizer, TokenizerConfig

        with torch.device("meta"):
            tok = AudioTokenizer(TokenizerConfig())
        tok.to_empty(device="cpu")
        for p in tok.parameters():
            torch.nn.init.normal_(p, std=0.02)
        tok.reset_derived_buffers()
        randomise_bn(tok.semantic.init_bn)
        model = TokenizerDenoiser(tok, LatentDenoiser(DenoiserConfig()))
    pipe = EnhancementPipeline(model.to(device).eval())
    wave = test_signal(seconds)
    pipe.enhance(wave[: SR * 3], SR)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = pipe.enhance(wave, SR)
        sync(device)
        times.append(time.perf_counter() - start)
    assert out.shape == wave.shape and np.isfinite(out).all()
    return {"seconds": min(times), "peak_mb": peak_memory_mb(device)}


def worker_reference(seconds: float, device: str, reference_dir: str, repeats: int) -> dict:
    import torch

    sys.path.insert(0, reference_dir)
    from dasheng_denoiser.feature_extractors import DashengFeatures
    from dasheng_denoiser.models import DashengBlocks
    from dasheng_denoiser.pretrained import denoiser
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    torch.manual_seed(0)
    # dasheng_denoiser/config.yaml, full size
    model = denoiser(
        feature_extractor=DashengFeatures("dasheng_base"),
        second_encoder=DashengBlocks(embedding_dims=768, num_heads=8, num_layers=3),
        backbone=VocosBackbone(input_channels=768, dim=768, intermediate_dim=1152, num_layers=8),
        head=ISTFTHead(dim=768, n_fft=1280, hop_length=640, padding="same"),
    )
    randomise_bn(model.feature_extractor.feat_encoder.init_bn[1])
    model = model.to(device).eval()
    wave = torch.from_numpy(test_signal(seconds))[None].to(device)
    model(wave[:, : SR * 3])  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        try:
            out = model(wave)
        except (RuntimeError, MemoryError) as err:  # capped address space / GPU memory
            return {
                "error": f"out of memory ({type(err).__name__})",
                "peak_mb": peak_memory_mb(device),
            }
        sync(device)
        times.append(time.perf_counter() - start)
    assert torch.isfinite(out).all()
    return {"seconds": min(times), "peak_mb": peak_memory_mb(device)}


def run_worker(python: str, args: list[str], max_gb: float | None = None) -> dict:
    def limit():
        if max_gb:
            cap = int(max_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(
        [python, os.path.abspath(__file__), *args],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [
        f"exit code {proc.returncode}"
    ]
    return {"error": tail[0][:200]}


def report(name: str, seconds: float, result: dict) -> None:
    if "error" in result:
        print(
            f"{name:<16} {seconds / 60:6.2f} min  failed: {result['error']}"
            + (f" (peak {result['peak_mb']:.0f} MiB)" if "peak_mb" in result else "")
        )
    else:
        print(
            f"{name:<16} {seconds / 60:6.2f} min  {result['seconds']:8.1f} s  RTF {result['seconds'] / seconds:7.4f}  "
            f"peak {result['peak_mb']:8.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--fallback-minutes",
        type=float,
        default=1.0,
        help="length to compare at if the reference cannot take --minutes",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed runs per measurement; the fastest counts"
    )
    parser.add_argument(
        "--tokenizer", action="store_true", help="also time the DashengTokenizer-based system"
    )
    parser.add_argument(
        "--reference-python",
        default=None,
        help="interpreter with torch+torchaudio, dasheng and vocos for the reference "
        "(default: the reference is skipped)",
    )
    parser.add_argument(
        "--reference-dir",
        default=None,
        help="folder holding the dasheng_denoiser package of xiaomi-research/dasheng-denoiser "
        "(needed with --reference-python)",
    )
    parser.add_argument("--reference-max-gb", type=float, default=12.0)
    parser.add_argument(
        "--worker", choices=["official", "tokenizer", "reference"], help=argparse.SUPPRESS
    )
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if (args.reference_python is None) != (args.reference_dir is None) and not args.worker:
        parser.error("--reference-python and --reference-dir go together")
    for option, path in (
        ("--reference-python", args.reference_python),
        ("--reference-dir", args.reference_dir),
    ):
        if path is not None and not os.path.exists(path):
            parser.error(f"{option} {path}: no such file or folder")

    if args.worker:
        import torch

        device = (
            args.device
            if args.device != "auto"
            else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if args.worker == "reference":
            result = worker_reference(args.seconds, device, args.reference_dir, args.repeats)
        else:
            result = worker_ours(args.worker, args.seconds, device, args.repeats)
        print(json.dumps(result), flush=True)
        return

    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"cpu count {os.cpu_count()}"
    )
    seconds = args.minutes * 60
    common = ["--device", args.device, "--repeats", str(args.repeats)]
    if args.reference_dir is not None:
        common += ["--reference-dir", args.reference_dir]
    ours = run_worker(sys.executable, ["--worker", "official", "--seconds", str(seconds), *common])
    report("ours-official", seconds, ours)
    if args.tokenizer:
        report(
            "ours-tokenizer",
            seconds,
            run_worker(
                sys.executable, ["--worker", "tokenizer", "--seconds", str(seconds), *common]
            ),
        )
    if args.reference_python is None:
        print(
            "reference        skipped: pass --reference-python (torch+torchaudio, dasheng, vocos) "
            "and --reference-dir (the dasheng_denoiser package) to time it"
        )
        return
    ref = run_worker(
        args.reference_python,
        ["--worker", "reference", "--seconds", str(seconds), *common],
        args.reference_max_gb,
    )
    report("reference", seconds, ref)
    if "error" not in ref and "error" not in ours:
        print(
            f"speed-up ours/reference at {args.minutes:g} min: {ref['seconds'] / ours['seconds']:.2f}x, "
            f"peak memory ratio {ours['peak_mb'] / ref['peak_mb']:.2f}"
        )
    elif "error" in ref and args.fallback_minutes < args.minutes:
        short = args.fallback_minutes * 60
        ours_s = run_worker(
            sys.executable, ["--worker", "official", "--seconds", str(short), *common]
        )
        ref_s = run_worker(
            args.reference_python,
            ["--worker", "reference", "--seconds", str(short), *common],
            args.reference_max_gb,
        )
        report("ours-official", short, ours_s)
        report("reference", short, ref_s)
        if "error" not in ref_s and "error" not in ours_s:
            print(
                f"speed-up ours/reference at {args.fallback_minutes:g} min: {ref_s['seconds'] / ours_s['seconds']:.2f}x, "
                f"peak memory ratio {ours_s['peak_mb'] / ref_s['peak_mb']:.2f}"
            )


if __name__ == "__main__":
    main()
