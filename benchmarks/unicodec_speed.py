"""UniCodec encode/decode speed on CPU, sonotok vs the official code, same weights, same run.

The reference (github:Jiang-Yidi/UniCodec, exported to --reference with its pure-Python needs
in --deps; see tests/fixtures/make_unicodec_parity.py) builds the full-size model with random
weights, saves it as an official-layout Lightning checkpoint, times `encode_infer` + `decode`
(domain speech, bandwidth id 0, as infer_audio.py) and keeps its outputs. sonotok then loads
that checkpoint through its official loader and times `encode_codes` + `decode` on the same
input, and checks its codes and audio against the reference's. The two alternate, one run each
per round (the load of a shared machine changes between rounds); best of --repeats rounds.
RTF = seconds of compute per second of audio (lower is faster); speedup = reference / ours.
The reference decodes its features, sonotok decodes the codes (embedding lookup included).

    python benchmarks/unicodec_speed.py --seconds 10 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from sonotok.tokenizer.unicodec import UnicodecTokenizer

ROOT = Path(__file__).resolve().parents[1]
MAKER = ROOT / "tests" / "fixtures" / "make_unicodec_parity.py"


def start_reference(args, folder: Path) -> subprocess.Popen:
    """The reference process: builds and saves the model, then times one run per line sent."""
    shim = folder / "shim"
    python = str(args.reference_python)
    subprocess.run(
        [python, str(MAKER), "--shim", str(shim), "--reference", str(args.reference)], check=True
    )
    paths = [str(shim), str(args.deps), str(args.reference)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    command = [python, str(MAKER), "--full-out", str(folder), "--time"]
    command += ["--seconds", str(args.seconds), "--threads", str(args.threads)]
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    if not _json_line(process).get("ready"):
        raise RuntimeError("the reference process did not start")
    return process


def _json_line(process: subprocess.Popen) -> dict:
    """The next JSON line the reference prints (it also prints progress text)."""
    for line in process.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"the reference process ended (exit code {process.wait()})")


def time_reference(process: subprocess.Popen) -> dict:
    process.stdin.write("go\n")
    process.stdin.flush()
    return _json_line(process)


def time_ours(model: UnicodecTokenizer, wave: torch.Tensor) -> dict:
    t0 = time.perf_counter()
    codes = model.encode_codes(wave)
    t1 = time.perf_counter()
    model.decode(codes)
    return {"encode_s": t1 - t0, "decode_s": time.perf_counter() - t1}


def run(args, folder: Path) -> tuple[dict, dict, dict]:
    """Interleaved rounds (reference, then ours) → (best reference, best ours, agreement)."""
    sys.path.insert(0, str(MAKER.parent))
    from make_unicodec_parity import benchmark_wave

    process = start_reference(args, folder)
    try:
        model = UnicodecTokenizer.from_pretrained(folder / "unicodec.ckpt", domain="speech")
        wave = benchmark_wave(args.seconds)
        codes = model.encode_codes(wave)  # warm-up
        audio = model.decode(codes)
        rounds = [(time_reference(process), time_ours(model, wave)) for _ in range(args.repeats)]
    finally:
        process.stdin.close()
        process.wait()
    ref = load_file(str(folder / "reference_outputs.safetensors"))
    best = [{k: min(r[i][k] for r in rounds) for k in ("encode_s", "decode_s")} for i in (0, 1)]
    agreement = {
        "codes_equal_fraction": float((codes[:, 0] == ref["codes"]).float().mean()),
        "audio_max_abs_diff": float((audio - ref["audio"]).abs().max()),
    }
    return best[0], best[1], agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", type=Path, default=Path("/work/refsrc/unicodec"))
    parser.add_argument("--deps", type=Path, default=Path("/work/refdeps/unicodec"))
    parser.add_argument("--reference-python", type=Path, default=Path("/work/refvenv/bin/python"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ref, ours, agreement = run(args, Path(tmp))
    s = args.seconds
    print(
        f"UniCodec full size, {s:.0f} s of audio, CPU, {args.threads} threads, best of {args.repeats}"
    )
    for step in ("encode", "decode"):
        r, o = ref[f"{step}_s"], ours[f"{step}_s"]
        print(f"  {step}: reference RTF {r / s:.3f}  sonotok RTF {o / s:.3f}  speedup ×{r / o:.2f}")
    print(
        f"  codes equal: {agreement['codes_equal_fraction']:.4f}; "
        f"audio max |diff| {agreement['audio_max_abs_diff']:.2e}"
    )


if __name__ == "__main__":
    main()
