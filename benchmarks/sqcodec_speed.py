"""SQCodec: encode/decode speed (RTF) and GMACs per audio second, sonotok vs the reference
package (PyPI sq-codec 0.0.1), same weights, same run, same device and thread count.

The reference is not a sonotok dependency: it runs in a child process with another Python
(`--reference-python`, default /work/refvenv/bin/python) and `--reference-path` on its
PYTHONPATH (sq-codec, vector-quantize-pytorch 1.22.15, local-attention and their imports; see
tests/fixtures/make_sqcodec_parity.py). Both load the same random full-size weights, written by
sonotok in the official per-module layout (`weights/<config>.v0/<module>.pt`).

What is timed: encode = wave → codes (the reference's `encode_audio`: pad to hop × window,
encoder, Transformer, FSQ); decode = codes → wave (`decode_audio(indices=...)`). RTF = seconds
of compute per second of audio (the fastest of `--repeats`, after one warm-up; the reference is
run before and after ours and its faster run kept, so load changes hit both alike), batch 1.
What is counted: MACs = FLOPs / 2 from `torch.utils.flop_counter.FlopCounterMode` (matrix
multiplications, convolutions, attention; element-wise ops such as Snake, norms and pooling are
not counted), for the same call in both, divided by the clip's seconds (the padding to
hop × window is included, as both compute it).

    python benchmarks/sqcodec_speed.py --config 6kbps --seconds 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def timed(fn, repeats: int) -> float:
    """The fastest of `repeats` calls after a warm-up (the least disturbed by other load)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gmacs(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    if os.environ.get("SQCODEC_FLOPS_BY_OP"):
        counts = counter.get_flop_counts().get("Global", {})
        print({str(k): v for k, v in counts.items()}, file=sys.stderr)
    return counter.get_total_flops() / 2 / 1e9


def measure(encode, decode, seconds: float, repeats: int) -> dict:
    return {
        "encode_rtf": timed(encode, repeats) / seconds,
        "decode_rtf": timed(decode, repeats) / seconds,
        "encode_gmacs_per_s": gmacs(encode) / seconds,
        "decode_gmacs_per_s": gmacs(decode) / seconds,
    }


def wave_for(seconds: float, rate: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * rate)) / rate
    return 0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(t.shape, generator=gen)


# ---- the reference, in its own environment --------------------------------------------------
def reference_child(args: argparse.Namespace) -> None:
    """Runs under the reference's Python: loads the weights with its own loader, measures."""
    import sq_codec
    from sq_codec.en_codec import EnCodec

    torch.set_num_threads(args.threads)
    config = sq_codec.SQCodecConfig(config_file=sq_codec.CONFIG_DIR / f"{args.config}.toml")
    network = EnCodec(config.network_config)
    network.load_model(model_path=Path(args.weights))
    codec = sq_codec.SQCodec.__new__(sq_codec.SQCodec)
    codec.network = network.eval()
    wave = torch.load(args.wave, weights_only=True)[None].to(args.device)
    network.to(args.device)
    # no_grad as ours (FlopCounterMode fails on weight-normed layers under inference_mode)
    with torch.no_grad():
        _, codes = codec.encode_audio(wave)
        result = measure(
            lambda: codec.encode_audio(wave),
            lambda: codec.decode_audio(indices=codes),
            wave.shape[-1] / args.rate,
            args.repeats,
        )
    result["codes"] = codes[0].tolist()
    print(json.dumps(result))


def run_reference(args, weights: Path, wave_file: Path, rate: int) -> dict:
    env = dict(os.environ, PYTHONPATH=args.reference_path)
    command = [
        args.reference_python, __file__, "--child", "--config", args.config,
        "--weights", str(weights), "--wave", str(wave_file), "--rate", str(rate),
        "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device,
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"the reference run failed:\n{out.stderr[-3000:]}")
    if os.environ.get("SQCODEC_FLOPS_BY_OP"):
        print("reference:", out.stderr, file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- sonotok ---------------------------------------------------------------------------------
def write_weights(config_name: str, root: Path) -> Path:
    """Random full-size weights in the official layout root/weights/<config>.v0/*.pt."""
    from sonotok.tokenizer.sqcodec import OFFICIAL_CONFIGS
    from sonotok.tokenizer.sqcodec.model import MODULES, SQCodecModel

    torch.manual_seed(0)
    fresh = SQCodecModel(OFFICIAL_CONFIGS[config_name])
    with torch.no_grad():  # away from the near-zero init, so the codes use the codebook
        for name, p in fresh.named_parameters():
            if name.endswith(("alpha", "original0")):
                p.uniform_(0.3, 0.7)
            elif p.dim() > 1:
                p.normal_(0, 1 / math.sqrt(p[0].numel()))
    folder = root / "weights" / f"{config_name}.v0"
    folder.mkdir(parents=True)
    for name in MODULES:
        torch.save(getattr(fresh, name).state_dict(), folder / f"{name}.pt")
    return folder


def run_ours(args, root: Path, wave: torch.Tensor) -> tuple[dict, list[int]]:
    from sonotok.tokenizer.sqcodec import SQCodecTokenizer

    model = SQCodecTokenizer.from_pretrained(f"{root}:{args.config}", device=args.device)
    wave = wave.to(args.device)
    codes = model.encode_codes(wave)
    result = measure(
        lambda: model.encode_codes(wave),
        lambda: model.decode(codes),
        wave.shape[-1] / model.sample_rate,
        args.repeats,
    )
    return result, codes[:, 0].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="6kbps")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference-python", default="/work/refvenv/bin/python")
    parser.add_argument("--reference-path", default="/work/refdeps/sqcodec")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--wave", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return reference_child(args)
    for path, option in [
        (args.reference_python, "--reference-python"),
        (args.reference_path, "--reference-path"),
    ]:
        if not Path(path).exists():
            sys.exit(f"{option} {path}: not found; install the reference (see --help) and pass it")
    torch.set_num_threads(args.threads)
    from sonotok.tokenizer.sqcodec import OFFICIAL_CONFIGS

    rate = OFFICIAL_CONFIGS[args.config].sample_rate
    wave = wave_for(args.seconds, rate)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = write_weights(args.config, root)
        torch.save(wave, root / "wave.pt")
        runs = [run_reference(args, weights, root / "wave.pt", rate)]  # before ours ...
        ours, our_codes = run_ours(args, root, wave)
        runs.append(run_reference(args, weights, root / "wave.pt", rate))  # ... and after
        ref = {k: min(r[k] for r in runs) if k.endswith("rtf") else runs[0][k] for k in runs[0]}
    same = ref.pop("codes")[: len(our_codes)] == our_codes
    print(
        f"SQCodec {args.config}, {args.seconds:g} s clip, {args.device}, "
        f"{args.threads} thread(s), batch 1; codes identical to the reference: {same}"
    )
    print("| metric | sonotok | reference | reference / sonotok |\n|---|---|---|---|")
    for key, label in [
        ("encode_rtf", "encode RTF"),
        ("decode_rtf", "decode RTF"),
        ("encode_gmacs_per_s", "encode GMACs / audio s"),
        ("decode_gmacs_per_s", "decode GMACs / audio s"),
    ]:
        print(f"| {label} | {ours[key]:.4f} | {ref[key]:.4f} | {ref[key] / ours[key]:.2f} |")


if __name__ == "__main__":
    main()
