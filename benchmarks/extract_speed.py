"""Extraction throughput: hours of audio encoded per hour, per device, bucketing on vs off.

Builds the tokenizer at full size (DashengTokenizer shapes, ~805M parameters, random
weights) unless --config tiny, generates clips of random lengths, and runs the real
`sonotok extract` pipeline (decode threads, batching, Arrow shards) twice on the same
data: length-sorted buckets and source order. Prints both rates, their ratio and the
padding each batching leaves (padded samples / real samples).

    python benchmarks/extract_speed.py                      # CPU: short workload
    python benchmarks/extract_speed.py --device cuda --dtype bf16 --clips 512 --batch-size 32
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time

import numpy as np
import soundfile as sf
import torch


def make_source(num_clips: int, min_s: float, max_s: float, seed: int = 0):
    import datasets

    from sonotok.core.sources import AudioSource

    rng = np.random.default_rng(seed)
    rows = {"id": [], "audio": []}
    seconds = rng.uniform(min_s, max_s, num_clips)
    for i, s in enumerate(seconds):
        n = int(s * 16000)
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + 0.05 * rng.standard_normal(n)
        buf = io.BytesIO()
        sf.write(buf, wave.astype(np.float32), 16000, format="FLAC")
        rows["id"].append(f"clip{i:05d}")
        rows["audio"].append({"bytes": buf.getvalue(), "path": None})
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))
    return AudioSource(ds, "audio", None, "id", "generated"), seconds


def padding_ratio(seconds: np.ndarray, shard: int, batch: int, max_s: float, bucketing: bool):
    from sonotok.extraction.extract import make_batches, shard_ranges

    lengths = (seconds * 16000).astype(int)
    padded = 0
    for a, b in shard_ranges(len(lengths), shard):
        part = lengths[a:b].tolist()
        for group in make_batches(part, batch, int(max_s * 16000), bucketing):
            padded += len(group) * max(part[i] for i in group)
    return padded / lengths.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["full", "tiny"], default="full")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--clips", type=int, default=None, help="default: 12 on CPU, 512 on GPU")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=None, help="default: 12 CPU, 30 GPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 2 CPU, 32 GPU")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--max-batch-seconds", type=float, default=320.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode; best is kept")
    args = parser.parse_args()
    cpu = torch.device(args.device).type == "cpu"
    clips = args.clips or (12 if cpu else 512)
    max_s = args.max_seconds or (12.0 if cpu else 30.0)
    batch = args.batch_size or (2 if cpu else 32)

    from sonotok.extraction.extract import ExtractConfig, Extractor
    from sonotok.tokenizer import AudioTokenizer, TokenizerConfig

    torch.manual_seed(0)
    config = TokenizerConfig() if args.config == "full" else TokenizerConfig.tiny()
    model = AudioTokenizer(config).to(args.device).eval().set_compute_dtype(args.dtype)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    source, seconds = make_source(clips, args.min_seconds, max_s)
    device_name = (
        torch.cuda.get_device_name() if not cpu else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"model: {args.config} ({params:.0f}M parameters, random weights), {device_name}, "
        f"dtype {args.dtype}; workload: {clips} clips of {args.min_seconds:.0f}-{max_s:.0f} s "
        f"({seconds.sum() / 3600:.4f} h), batch {batch}, shard {args.shard_size}"
    )
    # Warm-up (CUDA kernels, allocator) on a few clips, not timed.
    model.encode([torch.zeros(16000 * 2, device=args.device)] * 2)
    results: dict[str, dict] = {}
    # Interleaved repeats (off, on, off, on, ...): the best of each resists machine noise.
    for bucketing in (False, True) * args.repeats:
        with tempfile.TemporaryDirectory() as out:
            cfg = ExtractConfig(
                output=out,
                batch_size=batch,
                shard_size=args.shard_size,
                max_batch_seconds=args.max_batch_seconds,
                bucketing=bucketing,
                num_workers=args.workers,
                model_name=f"random-{args.config}",
            )
            extractor = Extractor(model, source, cfg)
            extractor.prepare()
            if not cpu:
                torch.cuda.synchronize()
            start, cpu_start = time.perf_counter(), time.process_time()
            done = extractor.run()
            if not cpu:
                torch.cuda.synchronize()
            wall = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
        rate = seconds.sum() / wall
        waste = padding_ratio(seconds, args.shard_size, batch, args.max_batch_seconds, bucketing)
        name = "bucketing on" if bucketing else "bucketing off"
        if rate > results.get(name, {}).get("hours_of_audio_per_hour", 0.0):
            results[name] = {
                "hours_of_audio_per_hour": rate,
                "wall_seconds": wall,
                "padded_over_real": waste,
                "cpu_seconds": cpu_seconds,
            }
        print(
            f"{name:14s}: {rate:10.1f} h audio/h per device ({wall:.1f} s wall, "
            f"{cpu_seconds:.1f} s CPU time, {done['rows']} clips), padded/real samples {waste:.2f}"
        )
    on, off = results["bucketing on"], results["bucketing off"]
    print(
        f"bucketing speed-up: {on['hours_of_audio_per_hour'] / off['hours_of_audio_per_hour']:.2f}x"
    )
    print(
        "CPU time ratio off/on (less sensitive to other jobs on a shared machine): "
        f"{off['cpu_seconds'] / on['cpu_seconds']:.2f}x"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
