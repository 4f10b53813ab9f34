"""SemantiCodec decoding: quality cost and speed of faster samplers vs the release's 50-step DDIM.

Encodes a test clip, decodes its quantized features with the release's sampler (DDIM, 50 steps,
eta 1, guidance 2) as the reference, then with each candidate (same guidance), and reports the
mel and STFT distances (`evaluation.spectral`, DAC's definitions) of each output to the
reference, and the decode time. The first candidate (same sampler, another noise seed) is the
floor: the release's own run-to-run variation, since DDIM with eta 1 is stochastic.

`--model tiny` uses a random tiny codec that cannot sound like anything: the numbers then only
show the harness works. Give real weights for real numbers (a save_pretrained folder or an
official name such as haoheliu/SemantiCodec:100tps-16384, resolvable offline).

    python benchmarks/semanticodec_samplers.py --model tiny --seconds 10
    python benchmarks/semanticodec_samplers.py --model /data/semanticodec-100tps --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

SR = 16000
CANDIDATES = (
    ("ddim", 50, 1.0, 1),  # (sampler, steps, eta, seed): the floor, another seed
    ("ddim", 50, 0.0, 0),
    ("ddim", 20, 0.0, 0),
    ("ddim", 10, 0.0, 0),
    ("ddim", 20, 1.0, 0),
    ("dpm++", 20, 0.0, 0),
    ("dpm++", 10, 0.0, 0),
)


def test_clip(seconds: float) -> torch.Tensor:
    """Harmonics gliding around 200 Hz with a 4 Hz envelope, plus a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    pitch = 200 + 60 * np.sin(2 * np.pi * 0.25 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return torch.from_numpy(0.2 * wave + noise).float()


def load_codec(name: str):
    if name == "tiny":
        from sonotok.tokenizer.semanticodec.train_decoder import tiny_codec

        codec = tiny_codec(100, 0).eval()
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # N(0, 1/fan_in) everywhere, so the random decoder is not silent
            for name, p in codec.decoder.named_parameters():
                noise = torch.randn(p.shape, generator=gen)
                scale = p[0].numel() ** -0.5 if p.dim() >= 2 else 0.05
                p.copy_(1 + 0.1 * noise if p.dim() == 1 and "norm" in name else scale * noise)
        return codec
    from sonotok.tokenizer.interface import load_tokenizer

    return load_tokenizer(name).eval()


def decode(
    codec, features, sampler, steps, eta, seed, guidance, device
) -> tuple[torch.Tensor, float]:
    from sonotok.tokenizer.semanticodec.windows import decode_features

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    audio = decode_features(
        codec.decoder, features, codec.config.token_rate, steps=steps, guidance=guidance,
        sampler=sampler, eta=eta, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return audio.float().cpu(), time.perf_counter() - start


def main() -> None:
    from sonotok.evaluation.spectral import mel_distance, stft_distance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    codec = load_codec(args.model).to(args.device)
    with torch.no_grad():
        features = codec.encode(test_clip(args.seconds).to(args.device))[None]
    reference, ref_time = decode(codec, features, "ddim", 50, 1.0, 0, args.guidance, args.device)
    ode, _ = decode(codec, features, "ddim", 50, 0.0, 0, args.guidance, args.device)
    rows = [dict(sampler="ddim", steps=50, eta=1.0, seed=0, seconds=ref_time, mel=0.0, stft=0.0,
                 mel_ode=mel_distance(reference, ode, SR), note="reference (the release's sampler)")]  # fmt: skip
    for sampler, steps, eta, seed in CANDIDATES:
        audio, secs = decode(codec, features, sampler, steps, eta, seed, args.guidance, args.device)
        rows.append(dict(
            sampler=sampler, steps=steps, eta=eta, seed=seed, seconds=secs,
            mel=mel_distance(audio, reference, SR), stft=stft_distance(audio, reference, SR),
            mel_ode=mel_distance(audio, ode, SR),
            note="floor: same sampler, other noise" if seed else "",
        ))  # fmt: skip
    audio_seconds = features.shape[1] / codec.frame_rate
    print(
        f"SemantiCodec samplers, model {args.model}, {audio_seconds:.2f} s, device {args.device}"
        + (" (random tiny weights: harness check only)" if args.model == "tiny" else "")
    )
    print(
        "distances to the release's output (DDIM 50, eta 1) and, last column, to the same-noise"
        " deterministic DDIM 50 (eta 0): how far each solver is from the converged ODE"
    )
    print(
        "| sampler | steps | eta | seconds | RTF | mel dist | STFT dist | mel vs DDIM-50 eta 0 | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sampler']} | {r['steps']} | {r['eta']:g} | {r['seconds']:.2f} | "
            f"{r['seconds'] / audio_seconds:.3f} | {r['mel']:.3f} | {r['stft']:.3f} | "
            f"{r['mel_ode']:.3f} | {r['note']} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
