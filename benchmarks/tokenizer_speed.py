"""Encode/decode speed and peak memory of the full-size tokenizer, sonotok vs the reference.

Both models are built at full size (805M parameters) with the same random weights (the
reference's state dict is loaded into ours through the official key mapping), so the run
also reports their max output difference. Real-time factor (RTF) = seconds of compute per
second of audio (lower is faster); "speedup" = reference time / our time in this run.

The reference (DashengTokenizer's HF modeling code) imports torchaudio, which needs a torch
build that ships it; run this script in such an environment with sonotok installed
(`pip install -e . --no-deps`) and point --reference-dir at a folder holding the reference
modules as a package `dashengtokenizer_ref`. Without it, only sonotok is measured.

    python benchmarks/tokenizer_speed.py --reference-dir /path/to/ref [--device cuda] [--dtypes fp32 bf16]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import PeakMemory  # noqa: E402

from sonotok.tokenizer import AudioTokenizer  # noqa: E402
from sonotok.tokenizer.checkpoints import OFFICIAL_TOKENIZER_KEYS, rename_keys  # noqa: E402

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_reference(reference_dir: str | None):
    if not reference_dir:
        return None
    sys.path.insert(0, reference_dir)
    try:
        from dashengtokenizer_ref.configuration_dasheng_tokenizer import DashengTokenizerConfig
        from dashengtokenizer_ref.modeling_dasheng_tokenizer import DashengTokenizerModel
    except ImportError as err:
        print(f"reference not available ({err}); measuring sonotok only", file=sys.stderr)
        return None
    torch.manual_seed(0)
    return DashengTokenizerModel(DashengTokenizerConfig()).eval()


def timed(fn, device, repeats):
    """Best wall time of `repeats` runs after one warm-up, and the peak memory of one run."""
    fn()
    with PeakMemory(device) as mem:
        fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, mem.peak_mb


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # Re-run with a fixed mmap threshold so freed tensors go back to the OS and the
        # sampled RSS follows live memory (CPU peak-memory figures), not the allocator's cache.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reference-dir", default=None, help="folder containing the package dashengtokenizer_ref"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument(
        "--cases", nargs="+", default=["1x30", "16x10"], help="BATCHxSECONDS (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    reference = load_reference(args.reference_dir)
    if reference is not None:
        ours = build_ours_from_reference(reference)
        reference.to(device)
    else:
        torch.manual_seed(0)
        ours = AudioTokenizer()
    ours.to(device)

    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'})"
    )
    print(
        f"{'case':>8} {'dtype':>5} {'step':>6} | {'ours s':>8} {'RTF':>7} {'MiB':>7} | {'ref s':>8} {'RTF':>7} {'MiB':>7} | {'speedup':>7} {'max|diff|':>9}"
    )
    for case in args.cases:
        batch, seconds = (float(v) for v in case.split("x"))
        batch = int(batch)
        torch.manual_seed(1)
        audio = (0.1 * torch.randn(batch, int(seconds * 16000))).to(device)
        audio_seconds = batch * seconds
        for dtype_name in args.dtypes:
            dtype = DTYPES[dtype_name]
            # A low-precision copy: casting back to fp32 would not restore the dropped bits.
            model = copy.deepcopy(ours).set_compute_dtype(dtype) if dtype is not None else ours
            autocast = (
                torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
            )
            results, ref_results = {}, {}
            with torch.no_grad():
                z = model.encode(audio)
                results["encode"] = (
                    timed(lambda a=audio, m=model: m.encode(a), device, args.repeats),
                    z,
                )
                y = model.decode(z)
                results["decode"] = (
                    timed(lambda z=z, m=model: m.decode(z), device, args.repeats),
                    y,
                )
                for step, call, arg in (
                    ("encode", reference and reference.encode, audio),
                    ("decode", reference and reference.decode, z),
                ):
                    if reference is None:
                        continue
                    try:  # e.g. the reference's encoder fails under CPU bf16 autocast
                        with autocast:
                            out = call(arg)
                            ref_results[step] = (
                                timed(lambda f=call, a=arg: f(a), device, args.repeats),
                                out,
                            )
                    except RuntimeError as err:
                        ref_results[f"{step}_error"] = str(err).splitlines()[0][:80]
            if dtype is not None:
                del model
            for step in ("encode", "decode"):
                (t, mem), out = results[step]
                line = f"{case:>8} {dtype_name:>5} {step:>6} | {t:8.2f} {t / audio_seconds:7.3f} {mem:7.0f} |"
                if step in ref_results:
                    (rt, rmem), rout = ref_results[step]
                    diff = (out.float() - rout.float()).abs().max().item()
                    line += f" {rt:8.2f} {rt / audio_seconds:7.3f} {rmem:7.0f} | {rt / t:7.2f} {diff:9.2e}"
                else:
                    line += f" reference failed: {ref_results.get(f'{step}_error', 'not run')}"
                print(line, flush=True)


def build_ours_from_reference(reference) -> AudioTokenizer:
    """sonotok's tokenizer with the reference's weights, through the official key mapping."""
    from sonotok.tokenizer import TokenizerConfig

    config = TokenizerConfig.from_official(reference.config.to_dict())
    state = rename_keys(reference.state_dict(), OFFICIAL_TOKENIZER_KEYS)
    return AudioTokenizer.from_state_dict(config, state, "reference")


if __name__ == "__main__":
    main()
